// vc-test: nested-extended
// virtc with --hypervisor kvm, each step its own process, inside the nested-KVM harness: the pod
// commands (status names the hypervisor and the VMM's pid) and `run --rm`. The full CLI suite runs
// on QEMU on the host (test/integration/cli.test.ts); node starts slowly in the emulated L1, so
// this file keeps to what is specific to the built-in VMM. Extended (`npm run test:nested-extended`):
// ≈ 100–150 s of CI's nested phase (each of its nine `virtc` processes loads ≈ 240 modules in the
// emulated L1), for a path the library's kvm-pod-lifecycle and the host's CLI suite reach too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAlive, waitForExit } from '../../src/host/process.js';
import { teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';

const virtc = fileURLToPath(new URL('../../../bin/virtc.js', import.meta.url));
const tmp = tempDir('vcn');
const root = tmp.path;

function run(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [virtc, '--root', root, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('virtc pod create/start/status/enter/stop/delete --hypervisor kvm', async () => {
  const created = await run(['pod', 'create', '--id', 'k1', '--hypervisor', 'kvm', '--memory', '256', '--network', 'none']);
  assert.is(created.code, 0, created.stderr);
  assert.match(created.stdout, /^hypervisor\s+kvm$/m);
  const started = await run(['pod', 'start', '--id', 'k1']);
  assert.is(started.code, 0, started.stderr);
  const status = await run(['pod', 'status', '--id', 'k1']);
  assert.match(status.stdout, /^state\s+running$/m);
  assert.match(status.stdout, /^hypervisor\s+kvm$/m);
  assert.match(status.stdout, /^vm state\s+running$/m);
  const pid = Number(/^vmm pid\s+(\d+)$/m.exec(status.stdout)?.[1]);
  assert.ok(pid > 0 && isAlive(pid), `the vc-vmm pid is shown and alive: ${status.stdout}`);
  assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /vc-vmm/);
  const uname = await run(['pod', 'enter', '--id', 'k1', '--', 'uname', '-r']);
  assert.is(uname.code, 0, uname.stderr);
  assert.match(uname.stdout, /^\S+-cloud-amd64\n$/, 'the guest runs the Debian cloud kernel');
  assert.is((await run(['pod', 'stop', '--id', 'k1'])).code, 0);
  assert.ok(await waitForExit(pid, 5000), 'vc-vmm is gone after stop');
  assert.is((await run(['pod', 'delete', '--id', 'k1'])).code, 0);
  assert.not.ok(existsSync(`${root}/pods/k1`));
  assert.equal(vmmProcessesUnder(root), []);
});

test('virtc run --rm --hypervisor kvm: stdio, exit code, nothing left behind', async () => {
  const result = await run(['run', '--rm', '--hypervisor', 'kvm', '--memory', '256', '--network', 'none', '--', 'sh', '-c', 'echo pid=$$; tr a-z A-Z; exit 3'], 'shout\n');
  assert.is(result.code, 3, result.stderr);
  assert.is(result.stdout, 'pid=1\nSHOUT\n');
  assert.equal(JSON.parse((await run(['pod', 'list', '--json'])).stdout), []);
  assert.equal(vmmProcessesUnder(root), []);
});

test.run();
