// Container calls beyond the lifecycle: pause/resume (the guest's cgroup freezer), usage
// numbers, live limit changes and the process list (docs/agent-protocol.md, "Pause, stats,
// limits, processes").
import type { AgentClient, JsonObject } from '../agent/index.js';
import { AgentError, describeValue } from '../agent/errors.js';
import { VcError } from '../errors.js';
import { containerLimitsSchema, type ContainerLimits } from '../model/container-config.js';
import { describeInput } from '../model/config-errors.js';
import { ContainerStore } from '../store/container-store.js';
import { agentLimits } from './container-spec.js';
import { lockedRunningPod } from './container.js';
import { containerStatusOf, refreshFromAgent, type ContainerStatus } from './container-status.js';
import { storeFor, type CallOptions } from './context.js';
import { withAgent } from './pod-session.js';
import { withPodLock } from './recover.js';
import { nextContainerState } from './transitions.js';

export interface ContainerStats {
  /** From cpu.stat, in microseconds and counts; null where the guest's cgroup lacks them. */
  cpu: {
    usageUsec: number | null; userUsec: number | null; systemUsec: number | null;
    nrPeriods: number | null; nrThrottled: number | null; throttledUsec: number | null;
  };
  /** Bytes: memory.current, memory.max (null: no limit), memory.swap.current; memory.stat and memory.events by their kernel keys. */
  memory: {
    usage: number | null; limit: number | null; swapUsage: number | null;
    stat: Record<string, number>; events: Record<string, number>;
  };
  /** pids.current and pids.max (null: no limit). */
  pids: { current: number | null; limit: number | null };
  /** io.stat, one entry per device. */
  io: Array<{ major: number; minor: number; rbytes: number; wbytes: number; rios: number; wios: number }>;
}

/**
 * Runs `body` with the pod lock held, the pod running, the container's record refreshed from the
 * agent and an agent connection; `body` returns the value and whether the record changed.
 */
async function withContainer<T>(
  podId: string, id: string, options: CallOptions,
  body: (agent: AgentClient, record: Awaited<ReturnType<ContainerStore['read']>>, containers: ContainerStore) => Promise<T>,
): Promise<T> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  return withPodLock(store, podId, options, async () => {
    const pod = await lockedRunningPod(store, podId, options);
    const record = await containers.read(podId, id);
    return withAgent(pod, options.signal, async (agent) => body(agent, await refreshFromAgent(agent, containers, record), containers));
  });
}

async function changeRunState(podId: string, id: string, event: 'pause' | 'resume', options: CallOptions): Promise<ContainerStatus> {
  return withContainer(podId, id, options, async (agent, record, containers) => {
    const target = nextContainerState(podId, id, record.state, event);
    await agent.request(event === 'pause' ? 'pause_container' : 'resume_container', { id });
    record.state = target ?? record.state;
    await containers.write(record);
    return containerStatusOf(record);
  });
}

/** Freezes every process of a running container (state `paused`) until resumeContainer. */
export async function pauseContainer(podId: string, id: string, options: CallOptions = {}): Promise<ContainerStatus> {
  return changeRunState(podId, id, 'pause', options);
}

export async function resumeContainer(podId: string, id: string, options: CallOptions = {}): Promise<ContainerStatus> {
  return changeRunState(podId, id, 'resume', options);
}

/** The container's cgroup numbers in the guest, as the kernel counts them. */
export async function containerStats(podId: string, id: string, options: CallOptions = {}): Promise<ContainerStats> {
  return withContainer(podId, id, options, async (agent) => parseContainerStats(await agent.request('container_stats', { id })));
}

/** Guest pids (the VM's numbering) of every process in the container. */
export async function containerProcesses(podId: string, id: string, options: CallOptions = {}): Promise<number[]> {
  return withContainer(podId, id, options, async (agent) => {
    const { pids } = await agent.request('container_pids', { id });
    if (!Array.isArray(pids) || !pids.every((p) => Number.isInteger(p) && (p as number) > 0)) {
      throw new AgentError('AGENT_PROTOCOL', `container_pids result: "pids" must be an array of positive integers, got ${describeValue(pids)}`, { op: 'container_pids' });
    }
    return pids as number[];
  });
}

/**
 * Changes the limits given (same units as ContainerConfig.limits) of a created, running or
 * paused container in place, and records them in its config. Lowering memory below what the
 * container uses gets it OOM-killed.
 */
export async function updateContainer(podId: string, id: string, update: { limits: ContainerLimits }, options: CallOptions = {}): Promise<ContainerStatus> {
  const parsed = containerLimitsSchema.safeParse(update?.limits, { reportInput: true });
  if (!parsed.success) {
    throw new VcError('INVALID_CONFIG', `invalid limits for container ${id}: ${describeInput(parsed.error.issues)}`, { cause: parsed.error });
  }
  const limits = parsed.data;
  return withContainer(podId, id, options, async (agent, record, containers) => {
    if (record.state !== 'created' && record.state !== 'running' && record.state !== 'paused') {
      throw new VcError('ILLEGAL_TRANSITION', `container ${id} in pod ${podId}: cannot update the limits of a container that is ${record.state}`);
    }
    await agent.request('update_container', { id, limits: agentLimits(limits) });
    record.config.limits = { ...record.config.limits, ...limits };
    await containers.write(record);
    return containerStatusOf(record);
  });
}

// --- the agent's answer, checked ------------------------------------------------------------

function statsError(field: string, expected: string, value: unknown): AgentError {
  return new AgentError('AGENT_PROTOCOL', `container_stats result: "${field}" must be ${expected}, got ${describeValue(value)}`, { op: 'container_stats' });
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

function object(value: unknown, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw statsError(field, 'an object', value);
  return value as JsonObject;
}

function countOrNull(obj: JsonObject, key: string, field: string): number | null {
  const v = obj[key];
  if (v === null || isCount(v)) return v;
  throw statsError(`${field}.${key}`, 'a non-negative number or null', v);
}

function counts(value: unknown, field: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(object(value, field))) {
    // A value the agent could not read is null there; left out here.
    if (v === null) continue;
    if (!isCount(v)) throw statsError(`${field}.${key}`, 'a non-negative number', v);
    out[key] = v;
  }
  return out;
}

export function parseContainerStats(result: JsonObject): ContainerStats {
  const cpu = object(result.cpu, 'cpu');
  const memory = object(result.memory, 'memory');
  const pids = object(result.pids, 'pids');
  if (!Array.isArray(result.io)) throw statsError('io', 'an array', result.io);
  const cpuKeys = ['usageUsec', 'userUsec', 'systemUsec', 'nrPeriods', 'nrThrottled', 'throttledUsec'] as const;
  return {
    cpu: Object.fromEntries(cpuKeys.map((k) => [k, countOrNull(cpu, k, 'cpu')])) as ContainerStats['cpu'],
    memory: {
      usage: countOrNull(memory, 'usage', 'memory'),
      limit: countOrNull(memory, 'limit', 'memory'),
      swapUsage: countOrNull(memory, 'swapUsage', 'memory'),
      stat: counts(memory.stat, 'memory.stat'),
      events: counts(memory.events, 'memory.events'),
    },
    pids: { current: countOrNull(pids, 'current', 'pids'), limit: countOrNull(pids, 'limit', 'pids') },
    io: result.io.map((entry, i) => {
      const e = object(entry, `io[${i}]`);
      const keys = ['major', 'minor', 'rbytes', 'wbytes', 'rios', 'wios'] as const;
      for (const k of keys) if (!isCount(e[k])) throw statsError(`io[${i}].${k}`, 'a non-negative number', e[k]);
      return Object.fromEntries(keys.map((k) => [k, e[k] as number])) as ContainerStats['io'][number];
    }),
  };
}
