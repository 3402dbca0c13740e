// Container status: the agent is the truth while the pod runs; the record on disk otherwise.
import type { AgentClient } from '../agent/index.js';
import { withLock } from '../store/lock.js';
import type { ContainerExit, ContainerRecord } from '../model/records.js';
import { ContainerStore } from '../store/container-store.js';
import type { PodStore } from '../store/pod-store.js';
import { storeFor, type CallOptions } from './context.js';
import { runningPod, withAgent } from './pod-session.js';
import type { ContainerStateName } from '../model/states.js';

export interface ContainerStatus {
  id: string;
  podId: string;
  state: ContainerStateName;
  /** Guest pid of the container's init (in the VM's pid namespace). */
  pid: number | null;
  image: string;
  argv: string[];
  tty: boolean;
  exitCode: number | null;
  signal: string | null;
  oomKilled: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export function containerStatusOf(record: ContainerRecord): ContainerStatus {
  return {
    id: record.id,
    podId: record.podId,
    state: record.state,
    pid: record.state === 'stopped' ? null : (record.pid ?? null),
    image: record.image.digest,
    argv: record.spec.argv,
    tty: record.config.tty,
    exitCode: record.exit?.exitCode ?? null,
    signal: record.exit?.signal ?? null,
    oomKilled: record.exit?.oomKilled ?? false,
    createdAt: record.createdAt,
    startedAt: record.startedAt ?? null,
    finishedAt: record.finishedAt ?? null,
  };
}

/** Updates the record from the agent's container_status; writes it when something changed. */
export async function refreshFromAgent(agent: AgentClient, containers: ContainerStore, record: ContainerRecord): Promise<ContainerRecord> {
  const status = await agent.request('container_status', { id: record.id }).catch((err: { code?: string }) => {
    if (err.code === 'NOT_FOUND') return undefined; // the guest lost it (agent restarted): treat as stopped
    throw err;
  });
  const state = (status?.state as ContainerStateName | undefined) ?? 'stopped';
  if (state === record.state && (state !== 'stopped' || record.exit)) return record;
  record.state = state;
  if (state === 'running' && !record.startedAt) record.startedAt = new Date().toISOString();
  if (state === 'stopped') {
    record.exit = {
      exitCode: typeof status?.exitCode === 'number' ? status.exitCode : null,
      signal: typeof status?.signal === 'string' ? status.signal : null,
      oomKilled: status?.oomKilled === true,
    };
    record.finishedAt = new Date().toISOString();
  }
  await containers.write(record);
  return record;
}

/** When the VM is gone, so are its containers: record them as stopped. */
export async function markContainersGone(store: PodStore, podId: string): Promise<void> {
  const containers = new ContainerStore(store);
  for (const id of await containers.ids(podId)) {
    const record = await containers.read(podId, id);
    if (record.state === 'stopped') continue;
    const exit: ContainerExit = { exitCode: null, signal: 'SIGKILL', oomKilled: false };
    record.state = 'stopped';
    record.exit = exit;
    record.finishedAt = new Date().toISOString();
    await containers.write(record);
  }
}

export async function containerStatus(podId: string, id: string, options: CallOptions = {}): Promise<ContainerStatus> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  return withLock(store.paths(podId).lock, `pod ${podId}`, options, async () => {
    const record = await containers.read(podId, id);
    const pod = await store.read(podId);
    if (pod.state !== 'running' || record.state === 'stopped') return containerStatusOf(record);
    const running = await runningPod(store, podId, options);
    return containerStatusOf(await withAgent(running, options.signal, (agent) => refreshFromAgent(agent, containers, record)));
  });
}

export async function listContainers(podId: string, options: CallOptions = {}): Promise<ContainerStatus[]> {
  const store = storeFor(options);
  await store.read(podId);
  const containers = new ContainerStore(store);
  const list: ContainerStatus[] = [];
  for (const id of await containers.ids(podId)) list.push(containerStatusOf(await containers.read(podId, id)));
  return list;
}
