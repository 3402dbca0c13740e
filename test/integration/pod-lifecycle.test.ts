// The pod lifecycle through the public API on real VMs with the Debian cloud kernel: on QEMU here,
// and on the built-in VMM inside the nested-KVM harness (test/nested).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { createPod, deletePod, enterPod, listPods, pausePod, podStatus, resumePod, startPod, stopPod, VcError } from '../../src/index.js';
import { isAlive, waitForExit } from '../../src/host/process.js';
import { readAll, teardownRoot, vmmProcessesUnder } from '../helpers/pods.js';
import { tempDir } from '../helpers/tmp.js';
import { codeOf } from '../helpers/errors.js';
import { recordedCgroup, testHypervisor as hypervisor, testNetwork } from '../helpers/hypervisor.js';
import { cgroupPids } from '../../src/host/cgroup.js';

const tmp = tempDir('vci');
const root = tmp.path;


test.after(async () => {
  await teardownRoot(root);
  tmp.remove();
});

test('a bad kernel path is rejected before anything is written', async () => {
  try {
    await createPod({ id: 'badkernel', hypervisor, kernel: { path: '/nonexistent/vmlinuz', modulesDir: '/nonexistent' } }, { root });
    assert.unreachable('createPod accepted a missing kernel');
  } catch (err) {
    assert.match((err as Error).message, /\/nonexistent\/vmlinuz/);
  }
  assert.not.ok(existsSync(`${root}/pods/badkernel`));
});

test('create, start, enter, stop and delete a pod', async () => {
  const created = await createPod({ id: 'life', hypervisor, memoryMiB: 384, network: testNetwork }, { root });
  assert.is(created.hypervisor, hypervisor);
  assert.is(created.state, 'ready');
  assert.is(created.pid, null);

  const started = await startPod('life', { root });
  assert.is(started.state, 'running');
  assert.ok(started.pid && isAlive(started.pid), `the ${hypervisor} VMM process is alive`);
  const cgroup = recordedCgroup(root, 'life');
  if (hypervisor === 'kvm') {
    assert.ok(cgroup.length > 0, 'the built-in VMM runs in a cgroup of its own');
    assert.ok(cgroupPids(cgroup).includes(started.pid!), 'the VMM is in its cgroup');
  }
  assert.equal((await listPods({ root })).map((p) => [p.id, p.state, 'vmState' in p ? p.vmState : null]), [['life', 'running', 'running']]);

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

  // Paused, no guest code runs: the VMM says so, and resume brings the same VM back.
  const paused = await pausePod('life', { root });
  assert.equal([paused.state, paused.vmState, paused.pid], ['paused', 'paused', started.pid]);
  assert.is(await codeOf(startPod('life', { root })), 'ILLEGAL_TRANSITION');
  const resumed = await resumePod('life', { root });
  assert.equal([resumed.state, resumed.vmState], ['running', 'running']);
  const again = await enterPod('life', ['cat', '/proc/sys/kernel/random/boot_id'], { root });
  const [bootId] = await Promise.all([readAll(again.stdout), again.wait()]);
  assert.match(bootId, /^[0-9a-f-]{36}\n$/);

  // A running pod cannot be deleted.
  assert.is(await codeOf(deletePod('life', { root })), 'POD_RUNNING');

  const stopped = await stopPod('life', { root });
  assert.is(stopped.state, 'stopped');
  assert.is(stopped.stopReason, 'requested');
  assert.ok(await waitForExit(started.pid!, 5000), 'the VMM exited');
  assert.equal(readdirSync(`${root}/pods/life`).filter((f) => f.endsWith('.sock') || f.endsWith('.pid')), []);
  for (const dir of cgroup) assert.not.ok(existsSync(dir), `cgroup ${dir} is removed at stop`);

  await deletePod('life', { root });
  assert.not.ok(existsSync(`${root}/pods/life`));
  assert.is(await codeOf(podStatus('life', { root })), 'POD_NOT_FOUND');
  assert.equal(vmmProcessesUnder(root), []);
});

test('a VMM killed under a running pod is reported, and delete leaves nothing behind', async () => {
  await createPod({ id: 'crash', hypervisor, memoryMiB: 256, network: testNetwork }, { root });
  const started = await startPod('crash', { root });
  const cgroup = recordedCgroup(root, 'crash');
  process.kill(started.pid!, 'SIGKILL');
  assert.ok(await waitForExit(started.pid!, 5000));

  const status = await podStatus('crash', { root });
  assert.is(status.state, 'stopped');
  assert.match(status.stopReason ?? '', new RegExp(`${hypervisor} process \\(pid ${started.pid}\\) exited unexpectedly`));
  // The built-in VMM's monitor (vc-vmm monitor) saw how it ended.
  if (hypervisor === 'kvm') assert.match(status.stopReason ?? '', /exited unexpectedly: killed by SIGKILL$/);
  assert.is(await codeOf(enterPod('crash', ['true'], { root })), 'POD_NOT_RUNNING');

  await deletePod('crash', { root });
  assert.not.ok(existsSync(`${root}/pods/crash`));
  assert.equal(vmmProcessesUnder(root), []);
  for (const dir of cgroup) assert.not.ok(existsSync(dir), `cgroup ${dir} is removed`);
});

test.run();
