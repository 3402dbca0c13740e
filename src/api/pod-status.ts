// Reading pods: status reflects what is really there, so a VMM that died under a running pod is
// noticed here and recorded as a transition, not just reported.
import { VcError } from '../errors.js';
import type { HypervisorKind } from '../model/hypervisor.js';
import type { PodRecord } from '../model/records.js';
import type { PodStore } from '../store/pod-store.js';
import { hypervisorOf, storeFor, type CallOptions } from './context.js';
import { isPodStep, type PodStateName } from '../model/states.js';
import { networkStatus, type PodNetworkStatus } from './pod-network.js';
import { hasVmm, settledPod, settleIfFree, withPodLock } from './recover.js';

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
  /** True when the pod stopped because its VMM went away on its own (crashed, was killed). */
  vmmDied: boolean;
  /** While `starting`, `stopping` or `deleting`: the call doing it. */
  step: { op: string; pid: number; since: string } | null;
  /** The pod's network mode and, while it runs, its interfaces (docs/networking.md). */
  network: PodNetworkStatus;
  /** A pod from a template (docs/snapshots.md): the template, and the agent's epoch of the latest restore (0 before the first). */
  template: { name: string; epoch: number } | null;
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
    vmmDied: record.state === 'stopped' && record.stopReason !== undefined && record.stopReason !== 'requested',
    step: record.step ? { op: record.step.op, pid: record.step.by.pid, since: record.step.at } : null,
    network: networkStatus(record),
    template: record.config.template !== undefined ? { name: record.config.template, epoch: record.restoreEpoch ?? 0 } : null,
  };
}

export async function podStatus(id: string, options: CallOptions = {}): Promise<PodStatus> {
  const store = storeFor(options);
  let record: PodRecord | null | undefined = await store.read(id);
  if (isPodStep(record.state)) {
    // A step whose caller died is settled now; one still running is reported as it stands.
    const settled = await settleIfFree(store, id, options);
    if (settled !== undefined) record = settled;
  } else if (hasVmm(record)) {
    record = await withPodLock(store, id, options, () => settledPod(store, id, options));
  }
  if (!record) throw new VcError('POD_NOT_FOUND', `pod ${id} does not exist in ${store.root} (an interrupted delete of it was finished)`);
  const vmState = hasVmm(record) && record.vmm
    ? await hypervisorOf(options, record.hypervisor).vmState(record.vmm, store.paths(id))
    : null;
  return statusOf(record, store, vmState);
}

/** A pod whose record cannot be read: listed with why, so one bad record does not hide the others. */
export interface UnreadablePod {
  id: string;
  state: 'unknown';
  /** The error, naming the file and what is wrong with it. */
  reason: string;
  stateFile: string;
}

export type PodListEntry = PodStatus | UnreadablePod;

export async function listPods(options: CallOptions = {}): Promise<PodListEntry[]> {
  const store = storeFor(options);
  const entries: PodListEntry[] = [];
  for (const id of await store.ids()) {
    try {
      entries.push(await podStatus(id, options));
    } catch (err) {
      const code = err instanceof VcError ? err.code : undefined;
      if (code === 'POD_NOT_FOUND' && !(await store.exists(id))) continue; // deleted meanwhile
      if (code === 'NETWORK_FAILED' || code === 'NETWORK_UNAVAILABLE' || code === 'CNI_PLUGIN_FAILED') {
        // Settling the pod's step failed in its network teardown: listed as it stands (its step
        // shows); the calls on the pod itself say why.
        entries.push(statusOf(await store.read(id), store));
        continue;
      }
      if (code === 'POD_NOT_FOUND' || code === 'STATE_CORRUPT' || code === 'STATE_UNSUPPORTED') {
        entries.push({ id, state: 'unknown', reason: (err as Error).message, stateFile: store.paths(id).state });
        continue;
      }
      throw err;
    }
  }
  return entries;
}
