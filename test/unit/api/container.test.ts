// src/api/container.ts against a fake hypervisor: every container transition, image disks shared
// and released, and the rollbacks of createContainer and startContainer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createContainer, deleteContainer, startContainer, stopContainer } from '../../../src/api/container.js';
import { containerStatus } from '../../../src/api/container-queries.js';
import { pauseContainer, resumeContainer } from '../../../src/api/container-ops.js';
import { createPod, startPod, stopPod } from '../../../src/api/pod.js';
import { nextContainerState, type ContainerEvent } from '../../../src/api/transitions.js';
import { containerStates, isContainerStep, type ContainerStateName } from '../../../src/model/states.js';
import { ContainerStore } from '../../../src/store/container-store.js';
import { assertConsistent, deadCaller, fakePods, leaveCreating, type FakePods } from './fake-pods.js';

let pods: FakePods;
test.before.each(() => {
  pods = fakePods();
});
test.after.each(async () => {
  await pods.done();
});

const code = (err: unknown) => (err as { code?: string }).code;

async function runningPod(id = 'p'): Promise<void> {
  await createPod({ id, hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod(id, pods.options());
}

const config = (id: string, image = id) => ({ id, rootfs: pods.rootfs(image), command: ['/bin/sleep', '9'] });

/** The guest says the container ended (its program exited); status calls notice it. */
function exitInGuest(id: string): void {
  pods.fake.vmOf('p')!.guest.containers.set(id, 'stopped');
}

/**
 * Puts container `id` of running pod p in `state`. The steps are left as a caller killed mid-step
 * leaves them (record written by hand, the step's caller a dead pid, the pod lock free):
 * `creating` after its image disk was attached (in the fake VM and in the pod record) and before
 * the agent was asked; `starting` after start_container reached the agent (it runs in the guest).
 */
async function containerIn(id: string, state: ContainerStateName): Promise<void> {
  if (state === 'creating') return void (await leaveCreating(pods, 'p', config(id)));
  await createContainer('p', config(id), pods.options());
  if (state === 'starting') {
    const containers = new ContainerStore(pods.store);
    const record = await containers.read('p', id);
    record.state = 'starting';
    record.step = { by: deadCaller(), at: new Date().toISOString() };
    await containers.write(record);
    pods.fake.vmOf('p')!.guest.containers.set(id, 'running');
    return;
  }
  if (state === 'running' || state === 'paused' || state === 'stopped') await startContainer('p', id, pods.options());
  if (state === 'paused') await pauseContainer('p', id, pods.options());
  if (state === 'stopped') await stopContainer('p', id, pods.options());
}

/** Where a container found in `state` (pod lock free) is before the event applies (null: gone). */
function settled(state: ContainerStateName): ContainerStateName | null {
  if (state === 'creating') return null; // undone
  if (state === 'starting') return 'running'; // as the agent says
  return state;
}

async function happen(id: string, event: ContainerEvent): Promise<unknown> {
  if (event === 'start') return startContainer('p', id, pods.options());
  if (event === 'delete') return deleteContainer('p', id, pods.options());
  if (event === 'pause') return pauseContainer('p', id, pods.options());
  if (event === 'resume') return resumeContainer('p', id, pods.options());
  exitInGuest(id);
  return containerStatus('p', id, pods.options());
}

for (const from of containerStates) {
  for (const event of ['start', 'pause', 'resume', 'exited', 'delete'] as const) {
    if (event === 'exited' && from === 'stopped') continue; // nothing left to exit
    test(`transition: ${event} on a ${from} container`, async () => {
      await runningPod();
      await containerIn('c', from);
      const containers = new ContainerStore(pods.store);
      const vm = pods.fake.vmOf('p')!;
      if (isContainerStep(from)) {
        assert.is((await containers.read('p', 'c')).state, from, 'the step is on disk before the call');
        assert.is(vm.disks.size, 1, 'the image disk is attached before the call');
      }
      // A step is settled first (creating: undone; starting: what the agent says), then the event.
      const base = settled(from);
      let expected: ContainerStateName | null | Error;
      if (base === null) {
        expected = event === 'delete' ? null : Object.assign(new Error('gone'), { code: 'CONTAINER_NOT_FOUND' });
      } else {
        try {
          expected = nextContainerState('p', 'c', base, event);
        } catch (err) {
          expected = err as Error;
        }
      }
      const outcome = await happen('c', event).then(() => null, (err: Error) => err);
      if (expected instanceof Error) {
        assert.is(code(outcome), code(expected), String(outcome));
        if (base === null) assert.equal(await containers.ids('p'), [], 'the interrupted create was undone');
        else assert.is((await containers.read('p', 'c')).state, base, 'a refused event leaves the state as it was (settled)');
      } else {
        assert.is(outcome, null, `${event} on ${from}: ${outcome?.message}`);
        if (expected === null) assert.equal(await containers.ids('p'), []);
        else assert.is((await containers.read('p', 'c')).state, expected);
      }
      const left = await containers.ids('p');
      if (left.length > 0) assert.is((await containers.read('p', 'c')).step, undefined, 'no step is left on disk');
      assert.is(vm.disks.size, left.length, 'the image disk is attached while its container has a record, else detached');
      assert.equal([...vm.guest.containers.keys()], left, 'the guest has the containers that have records');
      assert.equal(pods.fake.live().map((v) => v.podId), ['p']);
      await assertConsistent(pods);
    });
  }
}

test('createContainer: a created record, its image disk attached, the guest told', async () => {
  await runningPod();
  const status = await createContainer('p', config('c'), pods.options());
  assert.is(status.state, 'created');
  assert.ok(status.pid! > 0);
  const vm = pods.fake.vmOf('p')!;
  assert.is(vm.disks.size, 1);
  assert.ok(vm.guest.requests.includes('create_container:c'));
  await assertConsistent(pods);
});

test('createContainer: a pod that is not running is POD_NOT_RUNNING, nothing attached', async () => {
  await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
  assert.is(code(await createContainer('p', config('c'), pods.options()).catch((e) => e)), 'POD_NOT_RUNNING');
  assert.equal(await new ContainerStore(pods.store).ids('p'), []);
  await assertConsistent(pods);
});

test('createContainer: an existing id is CONTAINER_EXISTS, the disk keeps one user', async () => {
  await runningPod();
  await createContainer('p', config('c'), pods.options());
  assert.is(code(await createContainer('p', config('c'), pods.options()).catch((e) => e)), 'CONTAINER_EXISTS');
  const disks = (await pods.store.read('p')).disks!;
  assert.equal(Object.values(disks).map((d) => d.users), [['c']]);
  await assertConsistent(pods);
});

test('image disks: shared by containers of one image, detached with the last of them', async () => {
  await runningPod();
  await createContainer('p', config('a', 'img'), pods.options());
  await createContainer('p', config('b', 'img'), pods.options());
  const vm = pods.fake.vmOf('p')!;
  assert.is(vm.disks.size, 1);
  assert.is(pods.fake.calls.filter((c) => c.startsWith('attachDisk')).length, 1);
  await deleteContainer('p', 'a', pods.options());
  assert.is(vm.disks.size, 1, 'b still uses it');
  await deleteContainer('p', 'b', pods.options());
  assert.is(vm.disks.size, 0);
  assert.equal((await pods.store.read('p')).disks, {});
  await assertConsistent(pods);
});

test('createContainer rollback: attaching the disk fails; no record, no disk', async () => {
  await runningPod();
  pods.fake.onStep = (step) => {
    if (step === 'attachDisk') throw new Error('no free slot');
  };
  assert.match(String(await createContainer('p', config('c'), pods.options()).catch((e) => e)), 'no free slot');
  assert.equal(await new ContainerStore(pods.store).ids('p'), []);
  assert.equal((await pods.store.read('p')).disks, {});
  await assertConsistent(pods);
});

test('createContainer rollback: the agent fails after the image disk was attached; the disk is detached', async () => {
  await runningPod();
  const vm = pods.fake.vmOf('p')!;
  vm.guest.failOps.set('create_container', { code: 'EXEC_FAILED', message: 'bad image' });
  assert.is(code(await createContainer('p', config('c'), pods.options()).catch((e) => e)), 'EXEC_FAILED');
  assert.ok(pods.fake.calls.includes('attachDisk:p') && pods.fake.calls.includes('detachDisk:p'));
  assert.is(vm.disks.size, 0);
  assert.equal(await new ContainerStore(pods.store).ids('p'), []);
  await assertConsistent(pods);
});

test('createContainer rollback on a shared disk: the other container keeps it', async () => {
  await runningPod();
  await createContainer('p', config('a', 'img'), pods.options());
  const vm = pods.fake.vmOf('p')!;
  vm.guest.failOps.set('create_container', { code: 'EXEC_FAILED', message: 'no', id: 'b' });
  assert.is(code(await createContainer('p', config('b', 'img'), pods.options()).catch((e) => e)), 'EXEC_FAILED');
  assert.is(vm.disks.size, 1);
  assert.equal(Object.values((await pods.store.read('p')).disks!).map((d) => d.users), [['a']]);
  await assertConsistent(pods);
});

test('startContainer: the agent refuses; the record follows what the agent says', async () => {
  await runningPod();
  await createContainer('p', config('c'), pods.options());
  const vm = pods.fake.vmOf('p')!;
  vm.guest.failOps.set('start_container', { code: 'EXEC_FAILED', message: 'no such program' });
  vm.guest.containers.set('c', 'stopped'); // vc-agent records exit 127 for a program that cannot run
  assert.is(code(await startContainer('p', 'c', pods.options()).catch((e) => e)), 'EXEC_FAILED');
  const record = await new ContainerStore(pods.store).read('p', 'c');
  assert.is(record.state, 'stopped');
  assert.ok(record.exit);
  await assertConsistent(pods);
});

test('stopContainer: signals and waits; a stopped container is left as it is', async () => {
  await runningPod();
  await containerIn('c', 'running');
  const status = await stopContainer('p', 'c', pods.options());
  assert.is(status.state, 'stopped');
  const requests = pods.fake.vmOf('p')!.guest.requests;
  assert.ok(requests.includes('signal_container:c') && requests.includes('wait_container:c'));
  const again = await stopContainer('p', 'c', pods.options());
  assert.is(again.state, 'stopped');
  await assertConsistent(pods);
});

test('deleteContainer of a stopped pod: no agent, the record goes', async () => {
  await runningPod();
  await containerIn('c', 'running');
  await stopPod('p', pods.options());
  await deleteContainer('p', 'c', pods.options());
  assert.equal(await new ContainerStore(pods.store).ids('p'), []);
  await assertConsistent(pods);
});

test.run();
