// Shared set-up for the API-layer unit tests: a state root, a FakeHypervisor wired in through
// CallOptions.hypervisor, small rootfs directories as images, and a check that what is on disk
// agrees with what the fake has (no half-written record, no stray VM, no stray disk).
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { VmSpec } from '../../../src/hypervisor/types.js';
import type { ContainerRecord, PodRecord } from '../../../src/model/records.js';
import { prepareImage } from '../../../src/api/container.js';
import { containerSpec, imageSerial } from '../../../src/api/container-spec.js';
import { parseContainerConfig, type ContainerConfigInput } from '../../../src/model/container-config.js';
import type { PodStateName } from '../../../src/model/states.js';
import type { StopContainerOptions } from '../../../src/api/container.js';
import type { DeleteOptions, StartOptions, StopOptions } from '../../../src/api/pod.js';
import { ContainerStore } from '../../../src/store/container-store.js';
import { PodStore } from '../../../src/store/pod-store.js';
import { FakeHypervisor } from '../../helpers/fake-hypervisor.js';
import { tempDir } from '../../helpers/tmp.js';

/** Options any call of the API takes. */
export type ApiOptions = StartOptions & StopOptions & StopContainerOptions & DeleteOptions;

export interface FakePods {
  root: string;
  fake: FakeHypervisor;
  store: PodStore;
  options(extra?: ApiOptions): ApiOptions;
  /** A directory usable as a container's `rootfs` (one per name, each a distinct image). */
  rootfs(name: string): string;
  done(): Promise<void>;
}

export function fakePods(): FakePods {
  const dir = tempDir('vc-api');
  const root = join(dir.path, 'root');
  const fake = new FakeHypervisor();
  const rootfsDirs = new Map<string, string>();
  return {
    root,
    fake,
    store: new PodStore(root),
    options: (extra = {}) => ({ root, hypervisor: fake.factory, ...extra }),
    rootfs(name) {
      let path = rootfsDirs.get(name);
      if (!path) {
        path = join(dir.path, `rootfs-${name}`);
        mkdirSync(join(path, 'etc'), { recursive: true });
        writeFileSync(join(path, 'etc', 'image-name'), `${name}\n`);
        rootfsDirs.set(name, path);
      }
      return path;
    },
    async done() {
      await fake.stopAll();
      dir.remove();
    },
  };
}

/** Everything on disk reads back whole, and agrees with the fake hypervisor's VMs and disks. */
export async function assertConsistent(pods: FakePods): Promise<void> {
  const { store, fake } = pods;
  const containers = new ContainerStore(store);
  const ids = await store.ids();
  const podsDir = join(pods.root, 'pods');
  const entries = existsSync(podsDir) ? readdirSync(podsDir) : [];
  assert.equal(entries.filter((n) => n.startsWith('.')), [], 'no half-created pod directory');
  for (const vm of fake.live()) {
    assert.ok(ids.includes(vm.podId), `the fake's VM of pod ${vm.podId} belongs to a pod on disk`);
  }
  for (const id of ids) {
    const record = await store.read(id); // throws STATE_CORRUPT on a half-written record
    // Calls that returned (or threw) end their steps: only a caller that died leaves one.
    assert.is(record.step, undefined, `pod ${id} is in no step`);
    const files = readdirSync(store.paths(id).dir);
    assert.equal(files.filter((f) => f.includes('.tmp')), [], `no temp files left in pod ${id}`);
    const vm = fake.vmOf(id);
    const containerRecords = await Promise.all((await containers.ids(id)).map((c) => containers.read(id, c)));
    for (const c of containerRecords) assert.ok(c.step === undefined && c.state !== 'creating' && c.state !== 'starting', `container ${c.id} of pod ${id} is in no step`);
    if (record.state === 'running' || record.state === 'paused') {
      assert.ok(vm?.alive, `pod ${id} is ${record.state}: its VM runs`);
      assert.is(record.vmm?.pid, vm!.pid, `pod ${id}: the recorded VMM is the live one`);
      assert.equal(Object.keys(record.disks ?? {}).sort(), [...vm!.disks.keys()].sort(), `pod ${id}: recorded disks are the attached ones`);
      for (const c of containerRecords) {
        assert.ok(vm!.guest.containers.has(c.id), `container ${c.id} of pod ${id} is in the guest`);
        assert.ok(record.disks?.[c.image.serial]?.users.includes(c.id), `container ${c.id} is counted on its disk`);
      }
      for (const c of vm!.guest.containers.keys()) {
        assert.ok(containerRecords.some((r) => r.id === c), `guest container ${c} of pod ${id} has a record`);
      }
    } else {
      assert.is(vm, undefined, `pod ${id} is ${record.state}: no VM is left`);
      assert.is(record.disks, undefined, `pod ${id} is ${record.state}: no disks recorded`);
      if (record.state === 'ready') assert.equal(containerRecords.map((c) => c.id), [], `pod ${id} is ready: no containers`);
      for (const c of containerRecords) assert.is(c.state, 'stopped', `container ${c.id} of ${record.state} pod ${id}`);
    }
  }
}

/** The identity of a process that has exited: what a caller killed mid-step leaves in records. */
export function deadCaller(): { pid: number; startTime: number } {
  const child = spawnSync(process.execPath, ['-e', '0']);
  if (child.pid === undefined || child.status !== 0) throw new Error('could not run a short-lived process');
  return { pid: child.pid, startTime: 1 };
}

/**
 * Leaves pod `id` as a caller killed in the middle of a step would: the record, written through
 * PodStore, in `state` with a `step` whose caller (a dead pid) is gone and whose lock is free.
 * `starting`: a live fake VM was started and recorded (killed after vmm-recorded). `stopping`: the
 * pod ran, its VM still lives (killed before it was stopped). `deleting`: whatever VM it had stays.
 */
export async function leaveInStep(pods: FakePods, id: string, state: 'starting' | 'stopping' | 'deleting', from: PodStateName): Promise<PodRecord> {
  const { store, fake } = pods;
  const record = await store.read(id);
  if (state === 'starting') {
    record.vmm = await fake.start({ id, paths: store.paths(id) } as VmSpec);
    record.disks = {};
  }
  record.step = {
    op: state === 'starting' ? 'start' : state === 'stopping' ? 'stop' : 'delete',
    from,
    by: deadCaller(),
    at: new Date().toISOString(),
    creates: fake.resources(id, store.paths(id)),
  };
  record.state = state;
  await store.write(record);
  return record;
}

/**
 * Leaves container `input.id` of running pod `podId` as a createContainer killed after
 * disk-attached leaves it: its image disk attached in the fake VM and counted in the pod record,
 * the record `creating` with a dead caller, nothing in the guest yet.
 */
export async function leaveCreating(pods: FakePods, podId: string, input: ContainerConfigInput): Promise<ContainerRecord> {
  const cfg = parseContainerConfig(input);
  const image = await prepareImage(cfg, pods.options());
  const serial = imageSerial(image.digest);
  const pod = await pods.store.read(podId);
  if (!pod.disks?.[serial]) await pods.fake.attachDisk(pod.vmm!, pods.store.paths(podId), { serial, path: image.diskPath });
  const users = [...(pod.disks?.[serial]?.users ?? []), cfg.id];
  pod.disks = { ...pod.disks, [serial]: { path: image.diskPath, users } };
  await pods.store.write(pod);
  const record: ContainerRecord = {
    version: 2, id: cfg.id, podId, config: cfg, spec: containerSpec(podId, cfg, image.config), state: 'creating',
    step: { by: deadCaller(), at: new Date().toISOString() },
    image: { digest: image.digest, diskPath: image.diskPath, serial },
    createdAt: new Date().toISOString(),
  };
  await new ContainerStore(pods.store).write(record);
  return record;
}
