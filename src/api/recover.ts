// Crash-only recovery. A pod found in a step (`starting`, `stopping`, `deleting`) by a caller that
// holds its lock belongs to a call that died: the step is finished or undone here before anything
// else happens (DESIGN.md §12). The same functions end the steps of calls that fail normally, so
// a failure and a crash leave the same thing behind.
import { VcError } from '../errors.js';
import type { StepHook } from '../crash-points.js';
import { selfIdentity } from '../host/process.js';
import type { Hypervisor } from '../hypervisor/types.js';
import { hypervisorKindNames } from '../model/hypervisor.js';
import type { PodRecord, StepRecord } from '../model/records.js';
import { isPodStep, type PodStateName } from '../model/states.js';
import { ContainerStore } from '../store/container-store.js';
import { tryLock, withLock } from '../store/lock.js';
import type { PodStore } from '../store/pod-store.js';
import { hypervisorOf, type CallOptions } from './context.js';
import { markContainersGone } from './container-status.js';
import { nextState, stepOutcome } from './transitions.js';
import { releasePodNetns, tearDownNetwork, tearDownUnrecordedNetwork } from './pod-network.js';

/** Runs `body` under the pod's lock; a pod whose directory is gone is POD_NOT_FOUND. */
export async function withPodLock<T>(store: PodStore, id: string, options: CallOptions, body: () => Promise<T>): Promise<T> {
  const lockPath = store.paths(id).lock;
  await store.checkRoot(); // before the lock file is opened (or made) in the root
  try {
    // Only the signal: a call's own `timeoutMs` (a stop's power-off wait) is not a lock wait.
    return await withLock(lockPath, `pod ${id}`, { signal: options.signal }, body);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' && e.path === lockPath) {
      throw new VcError('POD_NOT_FOUND', `pod ${id} does not exist in ${store.root}`, { cause: err });
    }
    throw err;
  }
}

/** Marks the record as in `state` for `op`, and writes it: the step's own first act. */
export async function beginStep(store: PodStore, record: PodRecord, hypervisor: Hypervisor, op: StepRecord['op'], state: PodStateName): Promise<void> {
  record.step = {
    op,
    from: record.state,
    by: await selfIdentity(),
    at: new Date().toISOString(),
    creates: hypervisor.resources(record.id, store.paths(record.id)),
  };
  record.state = state;
  await store.write(record);
}

/**
 * Reads the pod with its lock held and settles it: an interrupted step is finished or undone, a
 * VMM that went away on its own is recorded. Null: the pod was being deleted and now is gone.
 */
export async function settledPod(store: PodStore, id: string, options: CallOptions): Promise<PodRecord | null> {
  const record = await store.read(id);
  if (isPodStep(record.state)) return settleStep(store, record, options);
  return noticeVmmExit(store, record, options);
}

/** As settledPod, for calls that cannot go on without the pod. */
export async function settledPodOrGone(store: PodStore, id: string, options: CallOptions): Promise<PodRecord> {
  const record = await settledPod(store, id, options);
  if (!record) throw new VcError('POD_NOT_FOUND', `pod ${id} does not exist in ${store.root} (an interrupted delete of it was finished)`);
  return record;
}

async function settleStep(store: PodStore, record: PodRecord, options: CallOptions): Promise<PodRecord | null> {
  const hypervisor = hypervisorOf(options, record.hypervisor);
  const who = record.step ? `by process ${record.step.by.pid} at ${record.step.at}` : 'by an earlier call';
  switch (record.state) {
    case 'starting':
      options.onProgress?.(`pod ${record.id}: undoing a start interrupted ${who}`);
      return undoStart(store, record, hypervisor);
    case 'stopping':
      options.onProgress?.(`pod ${record.id}: finishing a stop interrupted ${who}`);
      return finishStop(store, record, hypervisor);
    case 'deleting':
      options.onProgress?.(`pod ${record.id}: finishing a delete interrupted ${who}`);
      await finishDelete(store, record.id, [hypervisor], record);
      return null;
    default:
      return record;
  }
}

/**
 * Ends a start that failed or died: the VMM and all it made go, the containers the start created
 * with it, and the pod returns to the state it started from.
 */
export async function undoStart(store: PodStore, record: PodRecord, hypervisor: Hypervisor): Promise<PodRecord> {
  await hypervisor.reap(record.id, store.paths(record.id), record.vmm);
  await tearDownNetwork(record); // after the VMM: a process inside the namespace keeps it alive
  const containers = new ContainerStore(store);
  for (const c of record.config.containers) await containers.remove(record.id, c.id);
  await markContainersGone(store, record.id);
  // Back where the start began: a pod that never ran stays `ready`.
  record.state = record.step?.from === 'ready' ? 'ready' : 'stopped';
  delete record.vmm;
  delete record.disks;
  delete record.step;
  await store.write(record);
  return record;
}

/** Ends a stop: whatever of the VMM is left is killed and removed, the containers are gone. */
export async function finishStop(store: PodStore, record: PodRecord, hypervisor: Hypervisor): Promise<PodRecord> {
  await hypervisor.reap(record.id, store.paths(record.id), record.vmm);
  await tearDownNetwork(record);
  await markContainersGone(store, record.id);
  record.state = stepOutcome.stopping.done;
  record.stoppedAt = new Date().toISOString();
  record.stopReason = 'requested';
  delete record.disks;
  delete record.step;
  await store.write(record);
  return record;
}

/**
 * Ends a delete: every process, cgroup and file of the pod goes, then its directory. Without a
 * readable record, every hypervisor's resources are swept. Never returns while a VMM of the pod
 * runs: reap throws if one outlives SIGKILL.
 */
export async function finishDelete(
  store: PodStore, id: string, hypervisors: readonly Hypervisor[], record?: PodRecord, step?: StepHook,
  options: { force?: boolean; onProgress?: (message: string) => void } = {},
): Promise<string[]> {
  const paths = store.paths(id);
  const found: string[] = [];
  for (const hypervisor of hypervisors) found.push(...(await hypervisor.reap(id, paths, record?.vmm)));
  step?.('pod-reaped');
  if (record && !options.force) await tearDownNetwork(record);
  else {
    // Forced, or no readable record: whatever can be torn down is; a failure (a plugin since
    // removed, say) does not keep the pod.
    await (record ? tearDownNetwork(record) : tearDownUnrecordedNetwork(store, id)).catch((err: Error) => {
      options.onProgress?.(`pod ${id}: its network could not be torn down whole (${err.message}); removing the pod anyway`);
    });
  }
  await releasePodNetns(store, id);
  step?.('network-removed');
  await store.remove(id);
  step?.('directory-removed');
  return found;
}

/** Every hypervisor this library knows, as `options` makes them: for pods whose record is unreadable. */
export function allHypervisors(options: CallOptions): Hypervisor[] {
  return [...new Set(hypervisorKindNames.map((kind) => hypervisorOf(options, kind)))];
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
  const detail = await hypervisor.exitDetail?.(record.vmm, paths);
  record.stopReason = `the ${record.hypervisor} process (pid ${record.vmm.pid}) exited unexpectedly${detail ? `: ${detail}` : ''}`;
  await hypervisor.reap(record.id, paths, record.vmm);
  await tearDownNetwork(record);
  await markContainersGone(store, record.id);
  delete record.disks;
  await store.write(record);
  return record;
}

/** For calls that read without waiting: settles the pod if its lock is free, else leaves it be. */
export async function settleIfFree(store: PodStore, id: string, options: CallOptions): Promise<PodRecord | null | undefined> {
  await store.checkRoot();
  const lock = await tryLock(store.paths(id).lock).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new VcError('POD_NOT_FOUND', `pod ${id} does not exist in ${store.root}`, { cause: err });
    throw err;
  });
  if (!lock) return undefined;
  try {
    return await settledPod(store, id, options);
  } finally {
    await lock.release();
  }
}
