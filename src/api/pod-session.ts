// A running pod as the container calls need it: its record, its hypervisor, and agent connections.
import type { AgentClient } from '../agent/index.js';
import { VcError } from '../errors.js';
import type { Hypervisor } from '../hypervisor/types.js';
import type { PodPaths } from '../store/paths.js';
import type { PodRecord } from '../model/records.js';
import type { PodStore } from '../store/pod-store.js';
import { isPodStep } from '../model/states.js';
import { connectAgent } from './agent-link.js';
import { settleIfFree } from './recover.js';
import { hypervisorOf, type CallOptions } from './context.js';

export interface RunningPod {
  record: PodRecord & { vmm: NonNullable<PodRecord['vmm']> };
  hypervisor: Hypervisor;
  paths: PodPaths;
}

/**
 * The pod as read now (no lock needed), if it is running. A step whose caller died is settled
 * first when the lock is free (one that is under way leaves the pod not running yet).
 */
export async function runningPod(store: PodStore, podId: string, options: CallOptions): Promise<RunningPod> {
  let record = await store.read(podId);
  if (isPodStep(record.state)) {
    const settled = await settleIfFree(store, podId, options);
    if (settled === null) throw new VcError('POD_NOT_FOUND', `pod ${podId} does not exist in ${store.root} (an interrupted delete of it was finished)`);
    if (settled) record = settled;
  }
  return asRunningPod(store, record, options);
}

/** `record` as a RunningPod, if it is running and its VMM is alive (POD_NOT_RUNNING otherwise). */
export async function asRunningPod(store: PodStore, record: PodRecord, options: CallOptions): Promise<RunningPod> {
  const podId = record.id;
  if (record.state !== 'running' || !record.vmm) {
    throw new VcError('POD_NOT_RUNNING', `pod ${podId} is ${record.state}: start it first`);
  }
  const hypervisor = hypervisorOf(options, record.hypervisor);
  const paths = store.paths(podId);
  if (!(await hypervisor.isRunning(record.vmm, paths))) {
    throw new VcError('POD_NOT_RUNNING', `pod ${podId}: its ${record.hypervisor} process (pid ${record.vmm.pid}) is gone`);
  }
  return { record: record as RunningPod['record'], hypervisor, paths };
}

/** The pod being started, with its VMM recorded: for the containers the start creates. */
export function startingPod(store: PodStore, record: PodRecord, options: CallOptions): RunningPod {
  if (record.state !== 'starting' || !record.vmm) throw new Error(`pod ${record.id} is ${record.state}, not starting with a VMM`);
  return { record: record as RunningPod['record'], hypervisor: hypervisorOf(options, record.hypervisor), paths: store.paths(record.id) };
}

export function openAgent(pod: RunningPod, signal?: AbortSignal): Promise<AgentClient> {
  return connectAgent(pod.hypervisor.agentEndpoint(pod.paths, pod.record.vmm), { timeoutMs: 30_000, signal });
}

/** Runs `body` with a fresh agent connection that is closed afterwards. */
export async function withAgent<T>(pod: RunningPod, signal: AbortSignal | undefined, body: (agent: AgentClient) => Promise<T>): Promise<T> {
  const agent = await openAgent(pod, signal);
  try {
    return await body(agent);
  } finally {
    await agent.close();
  }
}
