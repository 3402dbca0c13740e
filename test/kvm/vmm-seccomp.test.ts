// vc-vmm's per-thread seccomp filters on running VMs (the idle test guest): with the test-only
// VC_VMM_TEST_SECCOMP_VIOLATION=KIND, SIGUSR2 makes a thread of that kind attempt execve, which no
// list allows; the VMM must die of SIGSYS there, and the detached VMM's monitor must log so. With
// "seccomp": false the same call is let through and the VM runs on. The lists themselves, without
// KVM: the C++ seccomp_* tests (test/native/vmm-seccomp.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTestGuestHost } from '../helpers/kvm-host.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const vcVmm = join(root, 'build/Release/vc-vmm');
const kernel = join(root, 'build/Release/testguest/vctest.bzImage');
const dir = tempDir('vc-vmmsec');
test.after(() => dir.remove());

requireTestGuestHost();

const read = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8') : '');
const gone = (pid: number) => !existsSync(`/proc/${pid}`);

/** Starts the idle guest detached with the hook armed for `kind`; resolves once it said ready. */
async function startIdle(name: string, kind: string, config: Record<string, unknown> = {}) {
  const serial = join(dir.path, `${name}.serial`);
  const log = join(dir.path, `${name}.log`);
  const configPath = join(dir.path, `${name}.json`);
  writeFileSync(configPath, JSON.stringify({ kernel, cmdline: 'vctest=idle', memoryMiB: 32, serialOutput: serial, ...config }));
  const r = spawnSync(vcVmm, ['run', '--config', configPath, '--detach', '--log', log], {
    encoding: 'utf8', env: { ...process.env, VC_VMM_TEST_SECCOMP_VIOLATION: kind }, timeout: 20_000,
  });
  assert.is(r.status, 0, `vc-vmm run --detach: ${r.stderr}${read(log)}`);
  const pid = (JSON.parse(r.stdout) as { pid: number }).pid;
  await waitFor('the idle guest to say ready', () => read(serial).includes('ready'));
  return { pid, log };
}

for (const kind of ['main', 'device', 'vcpu']) {
  test(`a ${kind} thread's forbidden call kills the detached VMM with SIGSYS, and its monitor logs it`, async () => {
    assert.ok(existsSync(kernel), `${kernel} is missing; run npm run build:native`);
    const { pid, log } = await startIdle(`kill-${kind}`, kind);
    try {
      process.kill(pid, 'SIGUSR2');
      await waitFor('the VMM to be gone', () => gone(pid));
      assert.match(read(log), new RegExp(
        `^vc-vmm monitor: the VMM \\(pid ${pid}\\) was killed by signal 31 \\(SIGSYS\\): a system call its seccomp filter does not allow$`, 'm'));
      assert.not.match(read(log), /execve was not stopped/);
    } finally {
      if (!gone(pid)) process.kill(pid, 'SIGKILL');
    }
  });
}

test('with "seccomp": false the same call is let through: the VM runs on and stops cleanly', async () => {
  const { pid, log } = await startIdle('off', 'vcpu', { seccomp: false });
  try {
    process.kill(pid, 'SIGUSR2');
    await waitFor('the hook to report that nothing stopped it', () => /execve was not stopped \(filters off\)/.test(read(log)));
    assert.ok(!gone(pid), 'the VMM still runs');
    process.kill(pid, 'SIGTERM');
    await waitFor('the VMM to be gone', () => gone(pid));
    assert.match(read(log), /VM stopped: signal/);
    assert.match(read(log), new RegExp(`^vc-vmm monitor: the VMM \\(pid ${pid}\\) exited with code 0$`, 'm'));
  } finally {
    if (!gone(pid)) process.kill(pid, 'SIGKILL');
  }
});

test('in the foreground the caller sees the SIGSYS itself', async () => {
  const child = spawn(vcVmm, ['run', '--config', '-'], {
    stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, VC_VMM_TEST_SECCOMP_VIOLATION: 'device' },
  });
  child.stdin.end(JSON.stringify({ kernel, cmdline: 'vctest=idle', memoryMiB: 32, serialOutput: '-' }));
  let serial = '';
  child.stdout.on('data', (d) => (serial += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    await waitFor('the idle guest to say ready', () => serial.includes('ready'));
    child.kill('SIGUSR2');
    assert.is(await exited, 'SIGSYS');
  } finally {
    clearTimeout(killer);
  }
});

test('an unknown kind in the test variable fails the start, naming the variable and the value', () => {
  const r = spawnSync(vcVmm, ['run', '--config', '-'], {
    input: JSON.stringify({ kernel, cmdline: 'vctest=idle', memoryMiB: 32 }), encoding: 'utf8',
    env: { ...process.env, VC_VMM_TEST_SECCOMP_VIOLATION: 'gpu' }, timeout: 20_000,
  });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /VC_VMM_TEST_SECCOMP_VIOLATION "gpu" is not main, device or vcpu/);
});

test.run();
