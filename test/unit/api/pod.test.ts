// src/api/pod.ts against a fake hypervisor: every pod transition of the state table, the rollbacks
// of startPod, and what each call leaves on disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPod, deletePod, pausePod, resumePod, startPod, stopPod } from '../../../src/api/pod.js';
import { podStatus } from '../../../src/api/pod-status.js';
import { canHappen, nextState, type PodEvent } from '../../../src/api/transitions.js';
import { isPodStep, podStates, type PodStateName } from '../../../src/model/states.js';
import { ContainerStore } from '../../../src/store/container-store.js';
import { assertConsistent, fakePods, leaveInStep, type FakePods } from './fake-pods.js';

let pods: FakePods;
test.before.each(() => {
  pods = fakePods();
});
test.after.each(async () => {
  await pods.done();
});

const podEvents: PodEvent[] = ['start', 'pause', 'resume', 'stop', 'vmmExited', 'delete'];

/**
 * Puts pod `id` in `state`. A step state is left as a caller killed mid-step leaves it (record
 * written by hand, the step's caller a dead pid, the lock free): `starting` from ready with a live
 * VM, `stopping` from running with its VM still live, `deleting` from stopped.
 */
async function podIn(id: string, state: PodStateName): Promise<void> {
  await createPod({ id, hypervisor: 'qemu', network: 'none' }, pods.options());
  if (state === 'ready') return;
  if (state === 'starting') return void (await leaveInStep(pods, id, 'starting', 'ready'));
  if (state === 'deleting') {
    await startPod(id, pods.options());
    await stopPod(id, pods.options());
    return void (await leaveInStep(pods, id, 'deleting', 'stopped'));
  }
  await startPod(id, pods.options());
  if (state === 'stopping') return void (await leaveInStep(pods, id, 'stopping', 'running'));
  if (state === 'paused') await pausePod(id, pods.options());
  if (state === 'stopped') await stopPod(id, pods.options());
}

/** Where a pod found in `state` with its lock free is before any event applies (null: gone). */
function settled(state: PodStateName): PodStateName | null {
  if (state === 'starting') return 'ready'; // undone to step.from
  if (state === 'stopping') return 'stopped'; // finished
  if (state === 'deleting') return null; // finished: gone
  return state;
}

async function happen(id: string, event: PodEvent): Promise<unknown> {
  const options = pods.options();
  switch (event) {
    case 'start': return startPod(id, options);
    case 'pause': return pausePod(id, options);
    case 'resume': return resumePod(id, options);
    case 'stop': return stopPod(id, options);
    case 'delete': return deletePod(id, options);
    case 'vmmExited':
      await pods.fake.crash(id);
      return podStatus(id, options); // status notices the exit and records it
  }
}

for (const from of podStates) {
  for (const event of podEvents) {
    // A VMM can only exit where there is one.
    if (event === 'vmmExited' && !canHappen(from, event)) continue;
    test(`transition: ${event} on a ${from} pod`, async () => {
      await podIn('p', from);
      if (isPodStep(from)) {
        assert.is((await pods.store.read('p')).state, from, 'the step is on disk before the call');
        assert.is(pods.fake.live().length, from === 'deleting' ? 0 : 1, 'the dead caller\'s VM lives before the call');
      }
      // A step is settled first; the event applies to what it settled to.
      const base = settled(from);
      let expected: PodStateName | null | Error;
      if (base === null) {
        expected = event === 'delete' ? null : Object.assign(new Error('gone'), { code: 'POD_NOT_FOUND' });
      } else if (event === 'stop' && isPodStep(from)) {
        expected = base; // what the stop wanted: settling the step left nothing running
      } else {
        try {
          expected = nextState('p', base, event);
        } catch (err) {
          expected = err as Error;
        }
      }
      const outcome = await happen('p', event).then(() => null, (err: Error) => err);
      if (expected instanceof Error) {
        assert.instance(outcome, Error);
        assert.is((outcome as { code?: string }).code, (expected as { code?: string }).code, String(outcome));
        if (base === null) assert.equal(await pods.store.ids(), [], 'the interrupted delete was finished');
        else assert.is((await pods.store.read('p')).state, base, 'a refused event leaves the state as it was (settled)');
      } else {
        assert.is(outcome, null, `${event} on ${from}: ${outcome?.message}`);
        if (expected === null) assert.equal(await pods.store.ids(), [], 'the pod is gone');
        else assert.is((await pods.store.read('p')).state, expected);
      }
      const now = (await pods.store.ids()).includes('p') ? (await pods.store.read('p')) : undefined;
      assert.is(now?.step, undefined, 'no step is left on disk');
      const runs = now?.state === 'running' || now?.state === 'paused';
      assert.equal(pods.fake.live().map((vm) => vm.podId), runs ? ['p'] : [], 'live VMs: one while the pod runs, else none');
      await assertConsistent(pods);
    });
  }
}

test('createPod: a ready record, no VM, the hypervisor checked', async () => {
  const status = await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  assert.is(status.state, 'ready');
  assert.is(status.pid, null);
  assert.equal(pods.fake.calls, ['check']);
  assert.equal(pods.fake.live(), []);
  await assertConsistent(pods);
});

test('createPod: a failing check writes nothing', async () => {
  pods.fake.onStep = (step) => {
    if (step === 'check') throw Object.assign(new Error('no accel here'), { code: 'HYPERVISOR_UNAVAILABLE' });
  };
  const err = await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options()).catch((e: Error) => e);
  assert.is((err as { code?: string }).code, 'HYPERVISOR_UNAVAILABLE');
  assert.equal(await pods.store.ids(), []);
});

test('createPod: an existing id is POD_EXISTS and the first pod stays whole', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  const err = await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', vcpus: 2 }, pods.options()).catch((e: Error) => e);
  assert.is((err as { code?: string }).code, 'POD_EXISTS');
  assert.is((await pods.store.read('p')).config.vcpus, 1);
  await assertConsistent(pods);
});

test('createPod: a root too long for socket paths is INVALID_CONFIG before the hypervisor is asked', async () => {
  const options = pods.options({ root: `${pods.root}/${'x'.repeat(100)}` });
  const err = await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, options).catch((e: Error) => e);
  assert.is((err as { code?: string }).code, 'INVALID_CONFIG');
  assert.equal(pods.fake.calls, []);
});

test('startPod: records the VMM and boots with the pod config; stopPod asks the guest to power off', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', vcpus: 2, memoryMiB: 256 }, pods.options());
  const status = await startPod('p', pods.options());
  assert.is(status.state, 'running');
  assert.is(status.vmState, 'running');
  const vm = pods.fake.vmOf('p')!;
  assert.is(status.pid, vm.pid);
  // The guest is told its network (mode none: its files and host name) once the agent answers.
  assert.equal(vm.guest.requests.filter((r) => r !== 'hello'), ['configure_network']);
  assert.equal(status.network, { mode: 'none', netns: null, interfaces: [] });
  await stopPod('p', pods.options());
  assert.ok(vm.guest.shutdownRequested);
  const record = await pods.store.read('p');
  assert.is(record.stopReason, 'requested');
  assert.ok(pods.fake.cleaned.includes(pods.store.paths('p').dir));
  await assertConsistent(pods);
});

test('startPod rollback: hypervisor.start fails, the pod stays ready', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  pods.fake.onStep = (step) => {
    if (step === 'start') throw new Error('VMM would not start');
  };
  const err = await startPod('p', pods.options()).catch((e: Error) => e);
  assert.match((err as Error).message, 'VMM would not start');
  assert.is((await pods.store.read('p')).state, 'ready');
  await assertConsistent(pods);
});

test('startPod rollback: the agent does not answer after the VMM is up; the VMM is stopped and cleaned up', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  pods.fake.agentFailures.set('hello', { code: 'INTERNAL', message: 'agent broken' });
  const err = await startPod('p', pods.options({ bootTimeoutMs: 2000 })).catch((e: Error) => e);
  assert.is((err as { code?: string }).code, 'AGENT_UNREACHABLE');
  assert.equal(pods.fake.live(), [], 'no VM is left');
  assert.ok(pods.fake.calls.includes('reap:p'), 'the failed start is undone by reaping the pod');
  assert.is((await pods.store.read('p')).state, 'ready');
  await assertConsistent(pods);
});

test('startPod rollback: the VMM exits during boot (the agent never answered)', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  pods.fake.agentFailures.set('hello', { code: 'UNUSED', message: 'hangs', silent: true });
  pods.fake.onStep = (step) => {
    if (step === 'isRunning' && pods.fake.vmOf('p')?.alive) void pods.fake.crash('p');
  };
  const err = await startPod('p', pods.options({ bootTimeoutMs: 10_000 })).catch((e: Error) => e);
  assert.is((err as { code?: string }).code, 'AGENT_UNREACHABLE');
  assert.match((err as Error).message, 'the qemu process exited during boot');
  assert.equal(pods.fake.live(), []);
  assert.is((await pods.store.read('p')).state, 'ready');
  await assertConsistent(pods);
});

const three = () => ['c1', 'c2', 'c3'].map((id) => ({ id, rootfs: pods.rootfs(id), command: ['/bin/true'] }));

for (const [what, arrange] of [
  ['create_container fails for container 2 of 3', () => pods.fake.agentFailures.set('create_container', { code: 'EXEC_FAILED', message: 'no', id: 'c2' })],
  ['start_container fails for container 2 of 3', () => pods.fake.agentFailures.set('start_container', { code: 'EXEC_FAILED', message: 'no', id: 'c2' })],
  ['attaching the image disk of container 2 of 3 fails', () => {
    let attached = 0;
    pods.fake.onStep = (step) => {
      if (step === 'attachDisk' && ++attached === 2) throw new Error('no free disk slot');
    };
  }],
] as const) {
  test(`startPod rollback: ${what}; the VM goes and the pod returns to ready`, async () => {
    await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', containers: three() }, pods.options());
    arrange();
    const err = await startPod('p', pods.options()).catch((e: Error) => e);
    assert.instance(err, Error);
    assert.equal(pods.fake.live(), []);
    assert.equal(await new ContainerStore(pods.store).ids('p'), []);
    const record = await pods.store.read('p');
    assert.is(record.state, 'ready');
    assert.is(record.vmm, undefined);
    await assertConsistent(pods);
    // and it starts whole once the fault is gone
    pods.fake.agentFailures.clear();
    pods.fake.onStep = undefined;
    await startPod('p', pods.options());
    assert.equal([...pods.fake.vmOf('p')!.guest.containers].sort(), [['c1', 'running'], ['c2', 'running'], ['c3', 'running']]);
    await assertConsistent(pods);
  });
}

test('startPod rollback of a stopped pod: it returns to stopped, no VMM recorded, its stop reason kept', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', containers: three() }, pods.options());
  await startPod('p', pods.options());
  await stopPod('p', pods.options());
  const before = await pods.store.read('p');
  pods.fake.agentFailures.set('start_container', { code: 'EXEC_FAILED', message: 'no', id: 'c3' });
  await startPod('p', pods.options()).then(() => assert.unreachable('started'), () => {});
  const after = await pods.store.read('p');
  assert.is(after.state, 'stopped');
  assert.ok(before.vmm, 'the first run was recorded');
  assert.is(after.vmm, undefined, 'the failed run\'s VMM was reaped and is not recorded');
  assert.is(after.step, undefined);
  assert.is(after.stopReason, 'requested');
  assert.equal(pods.fake.live(), []);
  await assertConsistent(pods);
});

test('stopPod: containers of the pod are recorded as stopped, disks forgotten', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none', containers: three() }, pods.options());
  await startPod('p', pods.options());
  assert.is(pods.fake.vmOf('p')!.disks.size, 3);
  await stopPod('p', pods.options());
  const containers = new ContainerStore(pods.store);
  for (const id of await containers.ids('p')) assert.is((await containers.read('p', id)).state, 'stopped');
  await assertConsistent(pods);
});

test('stopPod after the VMM died: the exit is recorded once, the stop then succeeds as a no-op', async () => {
  await podIn('p', 'running');
  await pods.fake.crash('p');
  const status = await stopPod('p', pods.options());
  assert.is(status.state, 'stopped');
  assert.match(status.stopReason ?? '', 'exited unexpectedly');
  await assertConsistent(pods);
});

test.run();
