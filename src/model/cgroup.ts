// The host cgroup of a pod's VMM: the limits it is created with and where it lives.

export interface CgroupLimits {
  /** CPUs' worth of time: a CFS quota of cpus × 100 ms per 100 ms period (at least 0.01). */
  cpus: number;
  /** Memory limit in bytes (at least 1 MiB); swap is not allowed beyond it. */
  memoryBytes: number;
  /** Most processes (and threads) in the group at once. */
  pidsMax: number;
}

export interface CgroupPaths {
  version: 1 | 2;
  /** The group's directories: one on cgroup v2, one per distinct hierarchy on v1. */
  paths: string[];
}
