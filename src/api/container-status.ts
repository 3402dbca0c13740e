// A container's status as the API reports it, and keeping its record true: the agent is the truth
// while the pod runs, the record on disk otherwise.
import type { AgentClient } from '../agent/index.js';
import type { ContainerExit, ContainerRecord } from '../model/records.js';
import { ContainerStore } from '../store/container-store.js';
import type { PodStore } from '../store/pod-store.js';
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
  delete record.step; // a step the agent's answer settles
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

/**
 * When the VM is gone, so are its containers: record them as stopped. One still `creating` never
 * came to be, and one whose record cannot be read is left for deletePod.
 */
export async function markContainersGone(store: PodStore, podId: string): Promise<void> {
  const containers = new ContainerStore(store);
  for (const id of await containers.ids(podId)) {
    const record = await containers.read(podId, id).catch(() => undefined);
    if (!record || record.state === 'stopped') continue;
    if (record.state === 'creating') {
      await containers.remove(podId, id);
      continue;
    }
    delete record.step;
    const exit: ContainerExit = { exitCode: null, signal: 'SIGKILL', oomKilled: false };
    record.state = 'stopped';
    record.exit = exit;
    record.finishedAt = new Date().toISOString();
    await containers.write(record);
  }
}
