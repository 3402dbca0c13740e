// src/api/recover.ts (and the calls that use it) against a fake hypervisor: steps left by a caller
// that died are settled by the next lock holder; startPod failing at any step leaves nothing;
// forced deletes of running, corrupt and newer records; unreadable pods in listPods/podStatus;
// container steps left by a dead caller.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createContainer, deleteContainer, startContainer } from '../../../src/api/container.js';
import { containerStatus, listContainers } from '../../../src/api/container-queries.js';
import { createPod, deletePod, startPod, stopPod } from '../../../src/api/pod.js';
import { listPods, podStatus, type PodStatus, type UnreadablePod } from '../../../src/api/pod-status.js';
import { VcError } from '../../../src/errors.js';
import { acquireLock } from '../../../src/store/lock.js';
import { ContainerStore } from '../../../src/store/container-store.js';
import { expectCode } from '../../helpers/errors.js';
import { assertConsistent, deadCaller, fakePods, leaveCreating, leaveInStep, type FakePods } from './fake-pods.js';

let pods: FakePods;
test.before.each(() => {
  pods = fakePods();
});
test.after.each(async () => {
  await pods.done();
});

const two = () => ['c1', 'c2'].map((id) => ({ id, rootfs: pods.rootfs(id), command: ['/bin/true'] }));
const live = () => pods.fake.live().map((vm) => vm.podId);

async function running(id = 'p', containers = two()): Promise<void> {
  await createPod({ id, hypervisor: 'qemu', network: 'none', containers }, pods.options());
  await startPod(id, pods.options());
}

// --- settling each pod step -------------------------------------------------------------------

for (const from of ['ready', 'stopped'] as const) {
  test(`a start from ${from} interrupted by a dead caller is undone by podStatus: VM reaped, back to ${from}`, async () => {
    await running();
    if (from === 'stopped') await stopPod('p', pods.options());
    else {
      // A ready pod: never ran. Make one by deleting and recreating.
      await stopPod('p', pods.options());
      await deletePod('p', pods.options());
      await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', containers: two() }, pods.options());
    }
    const left = await leaveInStep(pods, 'p', 'starting', from);
    assert.equal(live(), ['p'], 'the dead caller\'s VM runs');
    const progress: string[] = [];
    const status = await podStatus('p', pods.options({ onProgress: (m) => progress.push(m) }));
    assert.is(status.state, from);
    assert.is(status.step, null);
    assert.ok(progress.some((m) => m.includes(`undoing a start interrupted by process ${left.step!.by.pid}`)), progress.join('\n'));
    assert.equal(live(), [], 'the VM of the interrupted start is gone');
    const record = await pods.store.read('p');
    assert.is(record.state, from);
    assert.is(record.vmm, undefined);
    assert.is(record.step, undefined);
    assert.ok(pods.fake.calls.includes('reap:p'));
    assert.equal(await new ContainerStore(pods.store).ids('p'), [], 'the containers the start made are gone');
    await assertConsistent(pods);
    // and the pod starts again
    await startPod('p', pods.options());
    assert.equal(live(), ['p']);
    await assertConsistent(pods);
  });
}

test('a stop interrupted by a dead caller is finished by the next startPod, which then starts a new VM', async () => {
  await running();
  const left = await leaveInStep(pods, 'p', 'stopping', 'running');
  const oldPid = left.vmm!.pid;
  const status = await startPod('p', pods.options());
  assert.is(status.state, 'running');
  assert.is.not(status.pid, oldPid, 'a new VM');
  assert.equal(live(), ['p']);
  assert.ok(!pods.fake.vms.has(oldPid), 'the old VM was reaped');
  await assertConsistent(pods);
});

test('a stop interrupted by a dead caller: podStatus finishes it (stopped, requested, no VM, containers stopped)', async () => {
  await running();
  await leaveInStep(pods, 'p', 'stopping', 'running');
  const status = await podStatus('p', pods.options());
  assert.is(status.state, 'stopped');
  assert.is(status.stopReason, 'requested');
  assert.is(status.vmmDied, false);
  assert.equal(live(), []);
  const containers = new ContainerStore(pods.store);
  for (const id of ['c1', 'c2']) assert.is((await containers.read('p', id)).state, 'stopped', id);
  await assertConsistent(pods);
});

test('a delete interrupted by a dead caller is finished by the next call: VM reaped, directory gone, id free', async () => {
  await running();
  await leaveInStep(pods, 'p', 'deleting', 'running'); // e.g. a forced delete of a running pod
  assert.equal(live(), ['p']);
  await expectCode(podStatus('p', pods.options()), VcError, 'POD_NOT_FOUND');
  assert.equal(live(), []);
  assert.equal(await pods.store.ids(), []);
  assert.equal(readdirSync(`${pods.root}/pods`), [], 'no .deleted-* left');
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod('p', pods.options());
  await assertConsistent(pods);
});

test('a step whose caller still holds the lock is reported, not settled', async () => {
  await running();
  const left = await leaveInStep(pods, 'p', 'stopping', 'running');
  const lock = await acquireLock(pods.store.paths('p').lock, 'pod p (the test as the caller)');
  try {
    const status = await podStatus('p', pods.options());
    assert.is(status.state, 'stopping');
    assert.equal(status.step, { op: 'stop', pid: left.step!.by.pid, since: left.step!.at });
    assert.equal(live(), ['p'], 'the VM is left to the step\'s owner');
    const listed = (await listPods(pods.options()))[0] as PodStatus;
    assert.is(listed.state, 'stopping');
  } finally {
    await lock.release();
  }
  assert.is((await podStatus('p', pods.options())).state, 'stopped', 'settled once the lock is free');
  assert.equal(live(), []);
});

// --- startPod failing at each step ----------------------------------------------------------

for (const from of ['ready', 'stopped'] as const) {
  test(`startPod (from ${from}, two containers) failing at each fake step: no live VM, the pod back to ${from}`, async () => {
    await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', containers: two() }, pods.options());
    if (from === 'stopped') {
      await startPod('p', pods.options());
      await stopPod('p', pods.options());
    }
    // Count the steps of a clean start, then undo it.
    let count = 0;
    pods.fake.onStep = () => void count++;
    await startPod('p', pods.options());
    pods.fake.onStep = undefined;
    assert.ok(count > 5, `a start has several steps (${count})`);
    await stopPod('p', pods.options());
    if (from === 'ready') {
      await deletePod('p', pods.options());
      await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', containers: two() }, pods.options());
    }
    const stepsSeen: string[] = [];
    for (let at = 0; at < count; at++) {
      let n = 0;
      let failedAt = '';
      pods.fake.onStep = (step) => {
        if (n++ === at) {
          failedAt = step;
          throw new Error(`fake step ${step} failed`);
        }
      };
      const outcome = await startPod('p', pods.options({ bootTimeoutMs: 2000 })).then(() => 'ok', (e: Error) => e);
      pods.fake.onStep = undefined;
      stepsSeen.push(failedAt);
      if (process.env.VC_DEBUG_RECOVER) console.log(at, failedAt, outcome === 'ok' ? 'ok' : String(outcome));
      if (outcome === 'ok') {
        // Only the status query after the pod is recorded running may fail without failing the start.
        assert.is(failedAt, 'vmState', `failing at ${failedAt}, the start still succeeded`);
        assert.equal(live(), ['p'], `failing at ${failedAt} and still started`);
        await assertConsistent(pods);
        await stopPod('p', pods.options());
        if (from === 'ready') {
          await deletePod('p', pods.options());
          await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', containers: two() }, pods.options());
        }
        continue;
      }
      assert.equal(live(), [], `failing at step ${at} (${failedAt}): no live VM`);
      const record = await pods.store.read('p');
      assert.is(record.state, from, `failing at ${failedAt}: back to ${from}`);
      assert.is(record.step, undefined);
      assert.is(record.vmm, undefined);
      await assertConsistent(pods);
    }
    assert.ok(stepsSeen.includes('start') && stepsSeen.some((s) => s.startsWith('agent:')), stepsSeen.join(' '));
    // and it starts whole afterwards
    await startPod('p', pods.options());
    assert.equal(live(), ['p']);
    await assertConsistent(pods);
  });
}

test('startPod: a VMM liveness check that throws during boot fails the start cleanly (no unhandled rejection)', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  pods.fake.agentFailures.set('hello', { code: 'UNUSED', message: 'hangs', silent: true });
  let checks = 0;
  pods.fake.onStep = (step) => {
    if (step === 'isRunning' && ++checks <= 2) throw new Error('liveness check failed');
  };
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const err = await startPod('p', pods.options({ bootTimeoutMs: 1000 })).catch((e: Error) => e);
    assert.is((err as { code?: string }).code, 'AGENT_UNREACHABLE');
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    process.off('unhandledRejection', onUnhandled);
    pods.fake.onStep = undefined;
  }
  assert.ok(checks >= 1, 'the boot watcher asked');
  assert.equal(unhandled.map(String), [], 'no unhandled rejection');
  assert.equal(live(), []);
  assert.is((await pods.store.read('p')).state, 'ready');
  await assertConsistent(pods);
});

// --- deletePod force, corrupt and newer records ------------------------------------------------

test('deletePod of a running pod: POD_RUNNING without force; with force its VM is killed and the pod gone', async () => {
  await running();
  await expectCode(deletePod('p', pods.options()), VcError, 'POD_RUNNING');
  assert.equal(live(), ['p']);
  assert.is((await pods.store.read('p')).state, 'running');
  await deletePod('p', pods.options({ force: true }));
  assert.equal(live(), []);
  assert.equal(await pods.store.ids(), []);
  assert.ok(!existsSync(pods.store.paths('p').dir));
});

test('deletePod force of a corrupt state.json: VM reaped, directory gone', async () => {
  await running();
  writeFileSync(pods.store.paths('p').state, '{"version": 2, "id": "p", trunc');
  await expectCode(deletePod('p', pods.options()), VcError, 'STATE_CORRUPT', pods.store.paths('p').state);
  assert.equal(live(), ['p']);
  await deletePod('p', pods.options({ force: true }));
  assert.equal(live(), [], 'the VM was found without the record (by the pod directory)');
  assert.equal(await pods.store.ids(), []);
  assert.equal(readdirSync(`${pods.root}/pods`), []);
});

test('a record of version 99: STATE_UNSUPPORTED naming the file without force; removed with force', async () => {
  await running();
  const path = pods.store.paths('p').state;
  const record = await pods.store.read('p');
  writeFileSync(path, JSON.stringify({ ...record, version: 99 }));
  const err = await expectCode(deletePod('p', pods.options()), VcError, 'STATE_UNSUPPORTED');
  assert.match(err.message, path);
  assert.match(err.message, 'record version 99');
  assert.ok(existsSync(path), 'nothing removed without force');
  assert.equal(live(), ['p']);
  await expectCode(podStatus('p', pods.options()), VcError, 'STATE_UNSUPPORTED', path);
  await deletePod('p', pods.options({ force: true }));
  assert.equal(live(), []);
  assert.equal(await pods.store.ids(), []);
});

test('listPods reports unreadable pods as unknown with the reason, and lists the healthy ones', async () => {
  await running('good', []);
  await createPod({ id: 'bad', hypervisor: 'qemu', network: 'none' }, pods.options());
  await createPod({ id: 'newer', hypervisor: 'qemu', network: 'none' }, pods.options());
  writeFileSync(pods.store.paths('bad').state, 'not json');
  writeFileSync(pods.store.paths('newer').state, JSON.stringify({ ...(await pods.store.read('newer')), version: 99 }));
  const list = await listPods(pods.options());
  assert.equal(list.map((p) => [p.id, p.state]), [['bad', 'unknown'], ['good', 'running'], ['newer', 'unknown']]);
  const bad = list[0] as UnreadablePod;
  assert.is(bad.stateFile, pods.store.paths('bad').state);
  assert.match(bad.reason, pods.store.paths('bad').state);
  assert.match(bad.reason, /unreadable: .*JSON/);
  assert.match((list[2] as UnreadablePod).reason, 'newer virtcontainers');
  assert.is((list[1] as PodStatus).pid, pods.fake.vmOf('good')!.pid);
});

test('podStatus of a corrupt pod: STATE_CORRUPT naming the file and the parse error', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  const path = pods.store.paths('p').state;
  writeFileSync(path, '{"version": 2,');
  let parseError = '';
  try {
    JSON.parse('{"version": 2,');
  } catch (e) {
    parseError = (e as Error).message;
  }
  const err = await expectCode(podStatus('p', pods.options()), VcError, 'STATE_CORRUPT');
  assert.match(err.message, path);
  assert.match(err.message, parseError);
});

// --- container steps ----------------------------------------------------------------------------

const cfg = (id: string, image = id) => ({ id, rootfs: pods.rootfs(image), command: ['/bin/sleep', '9'] });

test('a container left creating by a dead caller is undone by deleteContainer: disk detached, record gone', async () => {
  await running('p', []);
  await leaveCreating(pods, 'p', cfg('c'));
  const vm = pods.fake.vmOf('p')!;
  assert.is(vm.disks.size, 1);
  await deleteContainer('p', 'c', pods.options());
  assert.is(vm.disks.size, 0, 'the disk is detached in the fake VM');
  assert.equal((await pods.store.read('p')).disks, {});
  assert.equal(await new ContainerStore(pods.store).ids('p'), []);
  await assertConsistent(pods);
});

test('a container whose caller died between attaching its disk and recording it: the disk is detached all the same', async () => {
  await running('p', []);
  const record = await leaveCreating(pods, 'p', cfg('c'));
  const pod = await pods.store.read('p');
  delete pod.disks![record.image.serial]; // the attach happened; its record did not
  await pods.store.write(pod);
  const vm = pods.fake.vmOf('p')!;
  assert.is(vm.disks.size, 1);
  await deleteContainer('p', 'c', pods.options());
  assert.is(vm.disks.size, 0, 'the unrecorded disk is detached in the fake VM');
  assert.equal(await new ContainerStore(pods.store).ids('p'), []);
  await assertConsistent(pods);
});

test('a container left creating (and made in the guest) is undone by the next createContainer of the same id', async () => {
  await running('p', []);
  await leaveCreating(pods, 'p', cfg('c'));
  const vm = pods.fake.vmOf('p')!;
  vm.guest.containers.set('c', 'created'); // the agent had made it when the caller died
  const calls = pods.fake.calls.length;
  const status = await createContainer('p', cfg('c'), pods.options());
  assert.is(status.state, 'created');
  const after = pods.fake.calls.slice(calls);
  assert.ok(after.indexOf('detachDisk:p') >= 0 && after.indexOf('detachDisk:p') < after.indexOf('attachDisk:p'), `the old attachment went first: ${after.join(' ')}`);
  assert.ok(vm.guest.requests.includes('delete_container:c'), 'the half-made guest container was deleted');
  assert.is(vm.disks.size, 1);
  assert.equal(Object.values((await pods.store.read('p')).disks!).map((d) => d.users), [['c']]);
  await assertConsistent(pods);
});

test('a creating container sharing a disk: the undo keeps the disk for the other container', async () => {
  await running('p', []);
  await createContainer('p', cfg('a', 'img'), pods.options());
  await leaveCreating(pods, 'p', cfg('b', 'img'));
  const vm = pods.fake.vmOf('p')!;
  await deleteContainer('p', 'b', pods.options());
  assert.is(vm.disks.size, 1, 'a still uses it');
  assert.equal(Object.values((await pods.store.read('p')).disks!).map((d) => d.users), [['a']]);
  await assertConsistent(pods);
});

for (const guestState of ['created', 'running'] as const) {
  test(`a container left starting by a dead caller is settled from the agent (guest says ${guestState})`, async () => {
    await running('p', []);
    await createContainer('p', cfg('c'), pods.options());
    const containers = new ContainerStore(pods.store);
    const record = await containers.read('p', 'c');
    record.state = 'starting';
    record.step = { by: deadCaller(), at: new Date().toISOString() };
    await containers.write(record);
    pods.fake.vmOf('p')!.guest.containers.set('c', guestState);
    assert.is((await listContainers('p', pods.options()))[0]!.state, 'starting', 'listContainers reads records only');
    const status = await containerStatus('p', 'c', pods.options());
    assert.is(status.state, guestState);
    const settled = await containers.read('p', 'c');
    assert.is(settled.state, guestState);
    assert.is(settled.step, undefined);
    if (guestState === 'created') {
      await startContainer('p', 'c', pods.options());
      assert.is((await containers.read('p', 'c')).state, 'running');
    }
    await assertConsistent(pods);
  });
}

test('stopPod of a pod with a creating container: the record goes with the VM', async () => {
  await running('p', []);
  await leaveCreating(pods, 'p', cfg('c'));
  await stopPod('p', pods.options());
  assert.equal(live(), []);
  assert.equal(await new ContainerStore(pods.store).ids('p'), []);
  await assertConsistent(pods);
});

test.run();

test('a start whose network cannot be made fails naming it, starts no VM, and the pod can be deleted', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'netns:/nonexistent/vc-netns' }, pods.options());
  const err = await startPod('p', pods.options()).catch((e: VcError) => e);
  assert.instance(err, VcError);
  assert.is((err as VcError).code, 'NETWORK_FAILED');
  assert.match((err as Error).message, '/nonexistent/vc-netns');
  assert.equal(live(), []);
  const status = await podStatus('p', pods.options()).catch((e: Error) => e);
  // Undone (back to ready) unless the teardown of the missing namespace failed too: then the
  // step stays for the next caller, and a forced delete still removes the pod.
  if (!(status instanceof Error)) assert.ok(['ready', 'starting'].includes(status.state), status.state);
  await deletePod('p', { ...pods.options(), force: true });
  assert.not.ok(existsSync(pods.store.paths('p').dir));
});
