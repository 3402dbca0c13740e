/**
 * io.containerd.cgroups.v2.Metrics (proto/io.containerd.cgroups.v2.proto): a container's cgroup v2
 * statistics as containerd takes them from Task Stats, packed in an Any.
 */
import { messageCodec, packAny, type Any, type MessageInit } from './messages.js';

export interface CgroupMetrics {
  pids: { current: number; limit: number } | null;
  cpu: { usageUsec: number; userUsec: number; systemUsec: number; nrPeriods: number; nrThrottled: number; throttledUsec: number } | null;
  memory: Record<string, number> | null;
  io: { usage: Array<{ major: number; minor: number; rbytes: number; wbytes: number; rios: number; wios: number }> } | null;
  memoryEvents: { low: number; high: number; max: number; oom: number; oomKill: number } | null;
}

export const metricsCodec = messageCodec<CgroupMetrics>('io.containerd.cgroups.v2.Metrics');

export function packMetrics(metrics: MessageInit<CgroupMetrics>): Any {
  return packAny(metricsCodec, metrics);
}
