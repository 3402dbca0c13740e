// `vc-vmm launcher` (native/vmm/cmd/launcher.cc) and its client (src/hypervisor/kvm/launcher.ts):
// runs of the test guest through pre-forked spares give what a spawned vc-vmm gives; spares are
// replaced; a bad request, a dead launcher and a stale socket are handled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runThroughLauncher } from '../../src/hypervisor/kvm/launcher.js';
import { requireTestGuestHost } from '../helpers/kvm-host.js';
import { childrenOf } from '../helpers/children.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const release = join(root, 'build/Release');
const vcVmm = join(release, 'vc-vmm');
const guest = join(release, 'testguest/vctest.elf');

requireTestGuestHost();

const dir = mkdtempSync('/tmp/vc-launcher-test-');
const socketPath = join(dir, 'launcher.sock');
const hello = join(dir, 'hello.json');
writeFileSync(hello, JSON.stringify({ kernel: guest, cmdline: 'vctest=hello', memoryMiB: 16, serialOutput: '-' }));
const idle = join(dir, 'idle.json');
writeFileSync(idle, JSON.stringify({ kernel: guest, cmdline: 'vctest=idle', memoryMiB: 16, serialOutput: join(dir, 'idle.serial') }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
  } catch {
    return false;
  }
}

async function startLauncher(spares = 2): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(vcVmm, ['launcher', '--socket', socketPath, '--spares', String(spares)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 10_000;
  while (!stderr.includes('serving') && Date.now() < deadline && child.exitCode === null) await sleep(10);
  assert.match(stderr, /serving .* with \d+ spares/, `launcher did not come up: ${stderr}`);
  while (childrenOf(child.pid!).length < spares && Date.now() < deadline) await sleep(10);
  return { child, stderr: () => stderr };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const ended = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await ended;
}

let launcher: Awaited<ReturnType<typeof startLauncher>>;

test.before(async () => {
  launcher = await startLauncher(2);
});

test.after(async () => {
  await stop(launcher.child);
  rmSync(dir, { recursive: true, force: true });
});

test('a run through a spare gives what a spawned vc-vmm gives: the guest\'s output, the timing lines, exit 0', async () => {
  const run = await runThroughLauncher(socketPath, ['run', '--config', hello], { cwd: dir, timeoutMs: 20_000 });
  assert.ok(run, 'a launcher listens');
  assert.is(run!.code, 0, run!.output);
  assert.match(run!.output, /vctest done failures=0/);
  assert.match(run!.output, /vc-vmm: timing: main -> VM built \d+ us -> first guest exit \d+ us/);
  assert.not.match(run!.output, /exit 0\n$/, 'the trailer is not part of the output');
});

test('each taken spare is replaced: the launcher keeps its count waiting', async () => {
  for (let i = 0; i < 3; i++) assert.is((await runThroughLauncher(socketPath, ['run', '--config', hello], { timeoutMs: 20_000 }))!.code, 0);
  const deadline = Date.now() + 5000;
  while (childrenOf(launcher.child.pid!).length !== 2 && Date.now() < deadline) await sleep(10);
  assert.is(childrenOf(launcher.child.pid!).length, 2);
});

test('a failing run reports vc-vmm\'s own error and exit code', async () => {
  const run = await runThroughLauncher(socketPath, ['run', '--config', join(dir, 'missing.json')], { timeoutMs: 20_000 });
  assert.is(run!.code, 2);
  assert.match(run!.output, /vc-vmm run: cannot read config .*missing\.json/);
});

test('a request the launcher refuses ends without an exit status, the refusal named', async () => {
  try {
    await runThroughLauncher(socketPath, ['caps'], { timeoutMs: 20_000 });
    assert.unreachable('caps is not a run');
  } catch (err) {
    assert.match((err as Error).message, /ended the run without an exit status: vc-vmm launcher: launch request: argv\[0\] is "caps", but the launcher only starts "run" and "restore"/);
  }
  const run = await runThroughLauncher(socketPath, ['run', '--config', hello], { cwd: '/nonexistent-dir', timeoutMs: 20_000 });
  assert.is(run!.code, 1);
  assert.match(run!.output, /vc-vmm launcher: cannot enter cwd \/nonexistent-dir/);
});

test('the caller\'s VC_* environment reaches the run (vc-vmm refuses a bad seccomp test-hook value it reads from there)', async () => {
  process.env.VC_VMM_TEST_SECCOMP_VIOLATION = 'bogus';
  try {
    const run = await runThroughLauncher(socketPath, ['run', '--config', hello], { timeoutMs: 20_000 });
    assert.is(run!.code, 1, run!.output);
    assert.match(run!.output, /VC_VMM_TEST_SECCOMP_VIOLATION "bogus" is not main, device or vcpu/);
  } finally {
    delete process.env.VC_VMM_TEST_SECCOMP_VIOLATION;
  }
  assert.is((await runThroughLauncher(socketPath, ['run', '--config', hello], { timeoutMs: 20_000 }))!.code, 0, 'and is not left behind for the next run');
});

test('a detached run answers with the VMM\'s pid and the connection ends at once, while the VM lives on', async () => {
  const t0 = Date.now();
  const run = await runThroughLauncher(socketPath, ['run', '--config', idle, '--detach', '--log', join(dir, 'idle.log')], { timeoutMs: 20_000 });
  assert.is(run!.code, 0, run!.output);
  const pid = Number(/"pid":(\d+)/.exec(run!.output)?.[1]);
  assert.ok(pid > 0, run!.output);
  assert.ok(Date.now() - t0 < 10_000);
  assert.ok(alive(pid), 'the detached VMM runs');
  // Its command line is the run's, as a spawned VMM's would be: the library finds a pod's VMM by it.
  assert.is(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 4).join(' '), `vc-vmm run --config ${idle}`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await sleep(20);
  assert.not.ok(alive(pid));
});

test('one launcher per socket; a killed launcher\'s waiting spares end with it and its stale socket is replaced', async () => {
  const second = spawn(vcVmm, ['launcher', '--socket', socketPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  second.stderr!.on('data', (d) => (said += d));
  const code = await new Promise((r) => second.on('exit', r));
  assert.is(code, 1);
  assert.match(said, /another launcher serves/);

  const spares = childrenOf(launcher.child.pid!);
  assert.is(spares.length, 2);
  await stop(launcher.child, 'SIGKILL');
  const deadline = Date.now() + 5000;
  while (spares.some(alive) && Date.now() < deadline) await sleep(20);
  assert.equal(spares.filter(alive), [], 'spares end with their launcher');
  assert.is(await runThroughLauncher(socketPath, ['run', '--config', hello], { timeoutMs: 5000 }), null, 'no launcher: the caller spawns');

  launcher = await startLauncher(1);
  assert.is((await runThroughLauncher(socketPath, ['run', '--config', hello], { timeoutMs: 20_000 }))!.code, 0);
});

test.run();
