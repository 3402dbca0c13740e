// kvm pods started through `vc-vmm launcher` (docs/vmm.md "Process model"), inside the nested-KVM
// harness's L1: with VC_VMM_LAUNCHER naming a running launcher, startPod's vc-vmm is one of its
// pre-forked spares (the launcher forks a replacement), jailed as usual, and the guest answers; with
// the launcher gone, startPod spawns vc-vmm again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPod, deletePod, enterPod, startPod, stopPod } from '../../src/index.js';
import { nativeExecutable } from '../../src/native.js';
import { LAUNCHER_ENV } from '../../src/hypervisor/kvm/launcher.js';
import { leftovers } from '../helpers/leaks.js';
import { readAll, teardownRoot } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { childrenOf } from '../helpers/children.js';

const tmp = tempDir('vclaunch');
const root = join(tmp.path, 'root');
const socketPath = join(tmp.path, 'launcher.sock');
let launcher: ChildProcess | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


test.after(async () => {
  delete process.env[LAUNCHER_ENV];
  launcher?.kill('SIGTERM');
  await teardownRoot(root);
  tmp.remove();
});

async function runTrue(id: string): Promise<void> {
  const p = await enterPod(id, ['true'], { root });
  const [, , status] = await Promise.all([readAll(p.stdout), readAll(p.stderr), p.wait()]);
  assert.equal(status, { exitCode: 0, signal: null });
}

test('a kvm pod started through the launcher: a spare runs its VMM, the guest answers, nothing is left after delete', async () => {
  launcher = spawn(nativeExecutable('vc-vmm'), ['launcher', '--socket', socketPath, '--spares', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  launcher.stderr!.on('data', (d) => (said += d));
  const deadline = Date.now() + 60_000;
  while (childrenOf(launcher.pid!).length < 1 && Date.now() < deadline) await sleep(50);
  const spares = childrenOf(launcher.pid!);
  assert.is(spares.length, 1, `the launcher's spare: ${said}`);
  process.env[LAUNCHER_ENV] = socketPath;

  await createPod({ id: 'via-launcher', hypervisor: 'kvm', memoryMiB: 256, network: 'none' }, { root });
  const started = await startPod('via-launcher', { root });
  assert.ok(started.pid);
  await runTrue('via-launcher');
  // The spare that ran it has gone (the VMM is detached); the launcher forked another.
  const after = childrenOf(launcher.pid!);
  assert.is(after.length, 1);
  assert.is.not(after[0], spares[0], 'the spare was taken and replaced');
  if (process.getuid?.() === 0 && process.env.VC_VMM_JAIL !== '0') {
    assert.match(readFileSync(`/proc/${started.pid}/status`, 'utf8'), /^NoNewPrivs:\s+1$/m, 'jailed as a spawned VMM is');
  }
  await stopPod('via-launcher', { root });
  await deletePod('via-launcher', { root });
  assert.equal(leftovers(root, 'via-launcher'), []);

  // No launcher listening: startPod spawns vc-vmm as before.
  launcher.kill('SIGKILL');
  await new Promise((r) => launcher!.once('exit', r));
  await createPod({ id: 'spawned', hypervisor: 'kvm', memoryMiB: 256, network: 'none' }, { root });
  await startPod('spawned', { root });
  await runTrue('spawned');
  await deletePod('spawned', { root, force: true });
});

test.run();
