// Reading pods: status reflects what is really there, so a VMM that died under a running pod is
// noticed here and recorded as a transition, not just reported.
import { VcError } from '../errors.js';
import { withLock } from '../store/lock.js';
import type { HypervisorKind } from '../model/hypervisor.js';
import type { PodRecord } from '../model/records.js';
import type { PodStore } from '../store/pod-store.js';
import { hypervisorOf, storeFor, type CallOptions } from './context.js';
import type { PodStateName } from '../model/states.js';
import { nextState } from './transitions.js';
import { markContainersGone } from './container-status.js';

export interface PodStatus {
  id: string;
  state: PodStateName;
  hypervisor: HypervisorKind;
  vcpus: number;
  memoryMiB: number;
  /** The VMM process while running. */
  pid: number | null;
  accel: string | null;
  /** The VMM's own view of a running VM ('running', 'paused', …); null when not running. */
  vmState: string | null;
  kernelRelease: string;
  consoleLog: string;
  createdAt: string;
  startedAt: string | null;
  stoppedAt: string | null;
  stopReason: string | null;
}

export function statusOf(record: PodRecord, store: PodStore, vmState: string | null = null): PodStatus {
  const running = hasVmm(record);
  return {
    id: record.id,
    state: record.state,
    hypervisor: record.hypervisor,
    vcpus: record.config.vcpus,
    memoryMiB: record.config.memoryMiB,
    pid: running ? (record.vmm?.pid ?? null) : null,
    accel: record.vmm?.accel ?? null,
    vmState: running ? vmState : null,
    kernelRelease: record.boot.kernelRelease,
    consoleLog: store.paths(record.id).console,
    createdAt: record.createdAt,
    startedAt: record.vmm?.startedAt ?? null,
    stoppedAt: record.stoppedAt ?? null,
    stopReason: record.stopReason ?? null,
  };
}

/** Running or paused: a VMM process belongs to the pod. */
export function hasVmm(record: PodRecord): boolean {
  return record.state === 'running' || record.state === 'paused';
}

/** Records the end of a VMM that went away on its own. Call with the pod lock held. */
export async function noticeVmmExit(store: PodStore, record: PodRecord, options: CallOptions): Promise<PodRecord> {
  if (!hasVmm(record) || !record.vmm) return record;
  const hypervisor = hypervisorOf(options, record.hypervisor);
  const paths = store.paths(record.id);
  if (await hypervisor.isRunning(record.vmm, paths)) return record;
  record.state = nextState(record.id, record.state, 'vmmExited') ?? record.state;
  record.stoppedAt = new Date().toISOString();
  record.stopReason = `the ${record.hypervisor} process (pid ${record.vmm.pid}) exited unexpectedly`;
  await hypervisor.cleanup(paths, record.vmm);
  await markContainersGone(store, record.id);
  delete record.disks;
  await store.write(record);
  return record;
}

export async function podStatus(id: string, options: CallOptions = {}): Promise<PodStatus> {
  const store = storeFor(options);
  let record = await store.read(id);
  if (hasVmm(record)) {
    record = await withLock(store.paths(id).lock, `pod ${id}`, options, async () => noticeVmmExit(store, await store.read(id), options));
  }
  const vmState = hasVmm(record) && record.vmm
    ? await hypervisorOf(options, record.hypervisor).vmState(record.vmm, store.paths(id))
    : null;
  return statusOf(record, store, vmState);
}

export async function listPods(options: CallOptions = {}): Promise<PodStatus[]> {
  const store = storeFor(options);
  const statuses: PodStatus[] = [];
  for (const id of await store.ids()) {
    try {
      statuses.push(await podStatus(id, options));
    } catch (err) {
      // Deleted between listing and reading, or still being created: not a pod to list.
      if (err instanceof VcError && err.code === 'POD_NOT_FOUND') continue;
      throw err;
    }
  }
  return statuses;
}
