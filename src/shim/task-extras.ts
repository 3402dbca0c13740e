/**
 * The Task methods on per-container guest operations: Pids (the container's processes), Pause and
 * Resume (its cgroup frozen in the guest), Stats (cgroup v2 numbers as containerd's Metrics) and
 * Update (limits changed live).
 */
import { containerProcesses, containerStats, pauseContainer, resumeContainer, updateContainer, type ContainerStats } from '../api/container-ops.js';
import type { Any } from './proto/messages.js';
import type { ProcessInfo } from './proto/task.js';
import { packMetrics } from './proto/metrics.js';
import { RpcError, StatusCode } from './ttrpc/errors.js';
import { limitsFromResources } from '../oci/container-from-spec.js';
import { asRpcError } from './pod-group.js';
import type { ShimContext } from './task-service.js';

interface TaskRefLike {
  id: string;
  containerId: string;
}

/** cgroup v2 "max" in containerd's Metrics: the largest uint64 (as a string: it is past 2^53). */
const UNLIMITED = '18446744073709551615';

export class TaskExtras {
  constructor(private readonly ctx: ShimContext) {}

  async pids(task: TaskRefLike): Promise<ProcessInfo[]> {
    const pids = await containerProcesses(this.ctx.podId, task.containerId, this.ctx.options).catch((err) => { throw asRpcError(err, `pids of ${task.id}`); });
    return pids.map((pid) => ({ pid, info: null }));
  }

  async pause(task: TaskRefLike, pause: boolean): Promise<void> {
    const call = pause ? pauseContainer : resumeContainer;
    await call(this.ctx.podId, task.containerId, this.ctx.options).catch((err) => { throw asRpcError(err, `${pause ? 'pause' : 'resume'} ${task.id}`); });
  }

  async stats(task: TaskRefLike): Promise<Any> {
    const stats = await containerStats(this.ctx.podId, task.containerId, this.ctx.options).catch((err) => { throw asRpcError(err, `stats of ${task.id}`); });
    return packMetrics(metricsOf(stats));
  }

  async update(task: TaskRefLike, resources: Any | null): Promise<void> {
    if (!resources?.value?.length) throw new RpcError(StatusCode.InvalidArgument, `update ${task.id}: resources: missing`);
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(resources.value).toString('utf8'));
    } catch (err) {
      throw new RpcError(StatusCode.InvalidArgument, `update ${task.id}: resources: not JSON: ${(err as Error).message}`);
    }
    const warnings: string[] = [];
    const limits = limitsFromResources(raw as Parameters<typeof limitsFromResources>[0], 'update resources', warnings);
    for (const w of warnings) this.ctx.log.warnOnce(w);
    if (Object.keys(limits).length === 0) return;
    await updateContainer(this.ctx.podId, task.containerId, { limits }, this.ctx.options).catch((err) => { throw asRpcError(err, `update ${task.id}`); });
  }
}

const camel = (key: string): string => key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
const count = (n: number | null | undefined): number => n ?? 0;

export function metricsOf(stats: ContainerStats): Parameters<typeof packMetrics>[0] {
  const memory: Record<string, number | string> = {};
  for (const [key, value] of Object.entries(stats.memory.stat)) memory[camel(key)] = value;
  memory.usage = count(stats.memory.usage);
  memory.usageLimit = stats.memory.limit ?? UNLIMITED;
  memory.swapUsage = count(stats.memory.swapUsage);
  const e = stats.memory.events;
  return {
    pids: { current: count(stats.pids.current), limit: stats.pids.limit ?? 0 },
    cpu: {
      usageUsec: count(stats.cpu.usageUsec), userUsec: count(stats.cpu.userUsec), systemUsec: count(stats.cpu.systemUsec),
      nrPeriods: count(stats.cpu.nrPeriods), nrThrottled: count(stats.cpu.nrThrottled), throttledUsec: count(stats.cpu.throttledUsec),
    },
    memory: memory as never,
    io: { usage: stats.io },
    memoryEvents: { low: count(e.low), high: count(e.high), max: count(e.max), oom: count(e.oom), oomKill: count(e.oom_kill) },
  };
}
