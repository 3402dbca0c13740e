// A running pod as the container calls need it: its record, its hypervisor, and agent connections.
import type { AgentClient } from '../agent/index.js';
import { VcError } from '../errors.js';
import type { Hypervisor } from '../hypervisor/types.js';
import type { PodPaths } from '../store/paths.js';
import type { PodRecord } from '../model/records.js';
import type { PodStore } from '../store/pod-store.js';
import { connectAgent } from './agent-link.js';
import { hypervisorOf, type CallOptions } from './context.js';

export interface RunningPod {
  record: PodRecord & { vmm: NonNullable<PodRecord['vmm']> };
  hypervisor: Hypervisor;
  paths: PodPaths;
}

/** The pod as read now (no lock needed), if it is running. */
export async function runningPod(store: PodStore, podId: string, options: CallOptions): Promise<RunningPod> {
  return asRunningPod(store, await store.read(podId), options);
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
