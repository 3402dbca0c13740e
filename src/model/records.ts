// What the store keeps on disk for pods and containers (the JSON of state.json and containers/<id>.json).
import type { CgroupPaths } from './cgroup.js';
import type { ContainerConfig } from './container-config.js';
import type { HypervisorKind } from './hypervisor.js';
import type { PodConfig } from './pod-config.js';
import type { ContainerStateName, PodStateName } from './states.js';

export interface BootArtifacts {
  kernelPath: string;
  kernelRelease: string;
  initrdPath: string;
  initrdDigest: string;
}

export interface VmmRecord {
  pid: number;
  /** Facts the hypervisor needs to find its VM again from another process. */
  accel?: string;
  startedAt: string;
  /** The cgroup the VMM runs in (built-in VMM): removed, with anything left in it, at cleanup. */
  cgroup?: CgroupPaths;
  /** How many agent ports the VM has (QEMU: virtio-serial ports agent.0 …). */
  agentPorts?: number;
}

export interface PodRecord {
  version: 1;
  id: string;
  config: PodConfig;
  hypervisor: HypervisorKind;
  state: PodStateName;
  boot: BootArtifacts;
  vmm?: VmmRecord;
  createdAt: string;
  updatedAt: string;
  stoppedAt?: string;
  /** Image disks attached to the running VM, by serial, with the containers that use each. */
  disks?: Record<string, { path: string; users: string[] }>;
  /** Why the pod stopped: 'requested', or what was seen when the VMM went away on its own. */
  stopReason?: string;
}

export interface ContainerExit {
  exitCode: number | null;
  signal: string | null;
  oomKilled: boolean;
}

/** What the container runs, after the image's defaults and the config are merged. */
export interface ContainerSpec {
  argv: string[];
  env: string[];
  cwd: string;
  user: string;
  hostname: string;
}

export interface ContainerRecord {
  version: 1;
  id: string;
  podId: string;
  config: ContainerConfig;
  image: { digest: string; diskPath: string; serial: string };
  spec: ContainerSpec;
  state: ContainerStateName;
  /** The agent's process id of the container's init (for attach) and its guest pid. */
  initProcess?: number;
  pid?: number;
  exit?: ContainerExit;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}
