// The pod lifecycle through the public API on real QEMU VMs with the Debian cloud kernel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { createPod, deletePod, enterPod, listPods, podStatus, startPod, stopPod, VcError } from '../../src/index.js';
import { isAlive, waitForExit } from '../../src/host/process.js';
import { readAll, teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { codeOf } from '../helpers/errors.js';

const tmp = tempDir('vci');
const root = tmp.path;


test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('a bad kernel path is rejected before anything is written', async () => {
  try {
    await createPod({ id: 'badkernel', hypervisor: 'qemu', kernel: { path: '/nonexistent/vmlinuz', modulesDir: '/nonexistent' } }, { root });
    assert.unreachable('createPod accepted a missing kernel');
  } catch (err) {
    assert.match((err as Error).message, /\/nonexistent\/vmlinuz/);
  }
  assert.not.ok(existsSync(`${root}/pods/badkernel`));
});

test('create, start, enter, stop and delete a pod', async () => {
  const created = await createPod({ id: 'life', hypervisor: 'qemu', memoryMiB: 384 }, { root });
  assert.is(created.state, 'ready');
  assert.is(created.pid, null);

  const started = await startPod('life', { root });
  assert.is(started.state, 'running');
  assert.ok(started.pid && isAlive(started.pid), 'the QEMU process is alive');
  assert.equal((await listPods({ root })).map((p) => [p.id, p.state, p.vmState]), [['life', 'running', 'running']]);

  // The guest runs the Debian cloud kernel, not the host's.
  const uname = await enterPod('life', ['uname', '-r'], { root });
  const [unameOut, unameStatus] = await Promise.all([readAll(uname.stdout), uname.wait()]);
  assert.equal(unameStatus, { exitCode: 0, signal: null });
  assert.is(unameOut.trim(), created.kernelRelease);
  assert.match(unameOut, /cloud-amd64/);
  assert.is.not(unameOut.trim(), release());

  // Exit codes propagate and stdout/stderr stay apart.
  const sh = await enterPod('life', ['sh', '-c', 'echo to-out; echo to-err >&2; exit 7'], { root });
  const [out, errText, status] = await Promise.all([readAll(sh.stdout), readAll(sh.stderr), sh.wait()]);
  assert.equal([out, errText, status.exitCode], ['to-out\n', 'to-err\n', 7]);

  // stdin reaches the guest process and comes back.
  const cat = await enterPod('life', ['sh', '-c', 'wc -c; echo done'], { root });
  const payload = 'x'.repeat(300_000);
  cat.stdin.end(payload);
  const [catOut, catStatus] = await Promise.all([readAll(cat.stdout), cat.wait()]);
  assert.is(catStatus.exitCode, 0);
  assert.equal(catOut.trim().split(/\s+/), [String(payload.length), 'done']);

  // A running pod cannot be deleted.
  assert.is(await codeOf(deletePod('life', { root })), 'POD_RUNNING');

  const stopped = await stopPod('life', { root });
  assert.is(stopped.state, 'stopped');
  assert.is(stopped.stopReason, 'requested');
  assert.ok(await waitForExit(started.pid!, 5000), 'QEMU exited');
  assert.equal(readdirSync(`${root}/pods/life`).filter((f) => f.endsWith('.sock') || f.endsWith('.pid')), []);

  await deletePod('life', { root });
  assert.not.ok(existsSync(`${root}/pods/life`));
  assert.is(await codeOf(podStatus('life', { root })), 'POD_NOT_FOUND');
  assert.equal(vmmProcessesUnder(root), []);
});

test('a QEMU killed under a running pod is reported, and delete leaves nothing behind', async () => {
  await createPod({ id: 'crash', hypervisor: 'qemu', memoryMiB: 256 }, { root });
  const started = await startPod('crash', { root });
  process.kill(started.pid!, 'SIGKILL');
  assert.ok(await waitForExit(started.pid!, 5000));

  const status = await podStatus('crash', { root });
  assert.is(status.state, 'stopped');
  assert.match(status.stopReason ?? '', new RegExp(`qemu process \\(pid ${started.pid}\\) exited unexpectedly`));
  assert.is(await codeOf(enterPod('crash', ['true'], { root })), 'POD_NOT_RUNNING');

  await deletePod('crash', { root });
  assert.not.ok(existsSync(`${root}/pods/crash`));
  assert.equal(vmmProcessesUnder(root), []);
});

test.run();
