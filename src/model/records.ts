// What the store keeps on disk for pods and containers (the JSON of state.json and containers/<id>.json).
import type { CgroupPaths } from './cgroup.js';
import type { ContainerConfig } from './container-config.js';
import type { HypervisorKind } from './hypervisor.js';
import type { PodNetworkRecord } from './network.js';
import type { PodConfig } from './pod-config.js';
import type { ContainerStateName, PodStateName } from './states.js';

export interface BootArtifacts {
  kernelPath: string;
  kernelRelease: string;
  initrdPath: string;
  initrdDigest: string;
}

/** The record format this version writes; it reads this one and the ones before it (1). */
export const RECORD_VERSION = 2;

/** A process told apart from a later one that got the same pid: its start time in clock ticks since boot. */
export interface ProcessIdentity {
  pid: number;
  startTime: number;
}

/**
 * What a hypervisor may create on the host for one pod, known before it creates any of it, so a
 * step that dies part-way can be finished or undone by the next caller (host/reap.ts).
 */
export interface PodResources {
  /**
   * A process with an argument containing this is the pod's VMM: a path in the pod directory that
   * only the VMM's command line names (QEMU's QMP socket, vc-vmm's config), so a user's `tail -f`
   * of the console log is not taken for one.
   */
  marker: string;
  /** Files a VMM may leave in the pod directory: sockets, pid file, config, log. */
  files: string[];
  /**
   * Directories a VMM may leave, empty on the host (vc-vmm's jail root: its mounts live only in the
   * VMM's own mount namespace). Removed with rmdir, never recursively: one that is not empty, or
   * has something mounted on it, is an error to look at, not something to delete through.
   */
  dirs?: string[];
  /** A file holding the VMM's pid (QEMU's -pidfile), if the hypervisor writes one. */
  pidFile?: string;
  /** The cgroup directories the VMM runs in, if the hypervisor makes one. */
  cgroup?: string[];
}

/** The step a pod is in (`starting`, `stopping`, `deleting`) and who runs it. */
export interface StepRecord {
  op: 'start' | 'stop' | 'delete';
  /** The state the pod was in when the step began: where an undone start returns to. */
  from: PodStateName;
  by: ProcessIdentity;
  at: string;
  /** Recorded before the step creates anything. */
  creates: PodResources;
}

export interface VmmRecord {
  pid: number;
  /** The VMM's start time (clock ticks since boot, /proc/PID/stat): a reused pid is not our VMM. */
  startTime?: number;
  /** Facts the hypervisor needs to find its VM again from another process. */
  accel?: string;
  startedAt: string;
  /** The cgroup the VMM runs in (built-in VMM): removed, with anything left in it, at cleanup. */
  cgroup?: CgroupPaths;
  /** How many agent ports the VM has (QEMU: virtio-serial ports agent.0 …). */
  agentPorts?: number;
}

export interface PodRecord {
  /** 1: written before steps were recorded (no intermediate states); read as is. */
  version: 1 | 2;
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
  /** A pod from a template: how many times it has been restored (the agent's epoch of the latest). */
  restoreEpoch?: number;
  /** Set while the pod is `starting`, `stopping` or `deleting`. */
  step?: StepRecord;
  /**
   * The pod's host network while it runs: its plan is written (with the `starting` step) before
   * anything of it is made, and it is torn down after the VMM is reaped.
   */
  network?: PodNetworkRecord;
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
  version: 1 | 2;
  id: string;
  podId: string;
  config: ContainerConfig;
  image: { digest: string; diskPath: string; serial: string };
  spec: ContainerSpec;
  state: ContainerStateName;
  /** While `creating` or `starting`: who runs the step. */
  step?: { by: ProcessIdentity; at: string };
  /** The agent's process id of the container's init (for attach) and its guest pid. */
  initProcess?: number;
  pid?: number;
  exit?: ContainerExit;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}
