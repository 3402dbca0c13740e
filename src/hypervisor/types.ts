// The seam between the pod API and a VMM. A hypervisor starts and ends VMs; it knows nothing of
// agents or containers beyond where the agent channel ends on the host.
import type { PodPaths } from '../store/paths.js';
import type { HypervisorKind } from '../model/hypervisor.js';
import type { PodResources, VmmRecord } from '../model/records.js';
import type { StepHook } from '../crash-points.js';


/** One agent port whose host end serves one client at a time; `lease` says who holds it. */
export interface LeasedPortEndpoint {
  /** The Unix socket of the port's host end (QEMU: the socket chardev of virtio-serial port agent.N). */
  socket: string;
  /** The file a client flocks (exclusive, non-blocking) for as long as it uses `socket`. */
  lease: string;
}

/**
 * Where the host reaches the guest agent: one socket that takes any number of clients (`unix`,
 * `hybrid-vsock`), or a set of ports each serving one client, shared out by lease files
 * (`leased-ports`, QEMU's virtio-serial; docs/agent-protocol.md "Transport").
 */
export type AgentEndpoint =
  | { kind: 'unix'; path: string }
  | { kind: 'hybrid-vsock'; path: string; port: number }
  | { kind: 'leased-ports'; ports: readonly LeasedPortEndpoint[] };

/** Every Unix socket path a client may connect to for `endpoint`. */
export function endpointSockets(endpoint: AgentEndpoint): string[] {
  return endpoint.kind === 'leased-ports' ? endpoint.ports.map((p) => p.socket) : [endpoint.path];
}

/** A snapshot's two files (docs/snapshots.md, "What a snapshot is"). */
export interface SnapshotFiles {
  state: string;
  memory: string;
}

export interface SnapshotResult {
  bytes: { state: number; memory: number };
}

/** What a whole check of a snapshot found (every byte of both files read; `vc-vmm snapshot verify`). */
export interface SnapshotCheck {
  vcpus: number;
  ramBytes: number;
  /** The CRC-32C of all of guest RAM, as the state file records it (`0x` and 8 hex digits). */
  ramCrc: string;
}

export interface VmSpec {
  id: string;
  paths: PodPaths;
  vcpus: number;
  memoryMiB: number;
  kernelPath: string;
  initrdPath: string;
  kernelCmdline: string;
  /** The pod's network namespace and a NIC per tap in it; the VMM runs inside the namespace. */
  network?: VmNetwork;
  /**
   * Directories of the disks attachDisk may give the running VM (the image cache): a VMM that
   * jails itself keeps these, read-only, and nothing else of the host's tree.
   */
  diskDirs?: string[];
  /**
   * The one directory the running VM may later be snapshotted into (a template's `.creating`
   * directory), given to the VMM at start: a jailed VMM cannot reach host paths afterwards.
   */
  snapshotDir?: string;
}

/** A VM's NICs: each opens its tap (in `netns`) and shows the guest `mac` and `mtu`. */
export interface VmNetwork {
  netns: string;
  nics: { tap: string; mac: string; mtu: number }[];
}

/** The command that runs `binary args` inside the VM's network namespace, if it has one (nsenter execs, so the pid is the VMM's). */
export function inNetns(network: VmNetwork | undefined, binary: string, args: string[]): [string, string[]] {
  if (!network) return [binary, args];
  return ['nsenter', [`--net=${network.netns}`, '--', binary, ...args]];
}

/** What one hypervisor can give a VM; createPod checks a pod against it (limits.ts). */
export interface HypervisorLimits {
  /** Guest RAM in MiB, both ends included. */
  memoryMiB: { min: number; max: number };
  vcpus: { min: number; max: number };
  /** How many distinct container images a running pod can hold as disks; null: no fixed number. */
  diskSlots: number | null;
}

export interface Hypervisor {
  readonly kind: HypervisorKind;
  readonly limits: HypervisorLimits;
  /** Throws HYPERVISOR_UNAVAILABLE, naming why, when this hypervisor cannot run VMs here. */
  check(): Promise<void>;
  /**
   * Starts the VM detached from the caller; resolves once the VMM process is up. `step` is called
   * after each thing start has made (crash points for tests); everything it makes is among
   * `resources()`, so `reap` undoes a start that died part-way.
   */
  start(spec: VmSpec, options?: { signal?: AbortSignal; step?: StepHook }): Promise<VmmRecord>;
  /** Everything `start` may create for the pod `id`, known before it creates any of it (pure). */
  resources(id: string, paths: PodPaths): PodResources;
  /**
   * Ends every process of the pod (recorded in `vmm`, or found through `resources()`) and removes
   * its cgroup and files, whatever state the pod's record is in; says what it found (with
   * `dryRun`, only says).
   */
  reap(id: string, paths: PodPaths, vmm?: VmmRecord, options?: { dryRun?: boolean }): Promise<string[]>;
  /**
   * Where the agent of the VM recorded in `vmm` answers. Without `vmm`: the widest endpoint this
   * hypervisor may give a pod (every socket path it could use, for checks of path lengths).
   */
  agentEndpoint(paths: PodPaths, vmm?: VmmRecord): AgentEndpoint;
  /** True while the VMM process recorded in `vmm` is alive and is still this pod's VMM. */
  isRunning(vmm: VmmRecord, paths: PodPaths): Promise<boolean>;
  /** How the VMM recorded in `vmm`, no longer running, ended ("killed by SIGSYS (…)"), if known. */
  exitDetail?(vmm: VmmRecord, paths: PodPaths): Promise<string | null>;
  /** What the VMM says of its VM ('running', 'paused', …), or null when it cannot be asked. */
  vmState(vmm: VmmRecord, paths: PodPaths): Promise<string | null>;
  /**
   * Gives the running VM a read-only disk whose serial the guest agent finds it by. QEMU
   * hot-plugs a SCSI disk; the built-in VMM fills a free virtio-blk slot.
   */
  attachDisk(vmm: VmmRecord, paths: PodPaths, disk: { serial: string; path: string }): Promise<void>;
  detachDisk(vmm: VmmRecord, paths: PodPaths, serial: string): Promise<void>;
  /** Ends the VMM: politely through its control channel, then by force after `timeoutMs`. */
  stop(vmm: VmmRecord, paths: PodPaths, options?: { timeoutMs?: number }): Promise<void>;
  /** Stops running guest code (the VM keeps its memory) and starts it again. */
  pause(vmm: VmmRecord, paths: PodPaths): Promise<void>;
  resume(vmm: VmmRecord, paths: PodPaths): Promise<void>;
  /**
   * Snapshots the running VM into `dir` (existing, empty): `state` and `memory` (docs/snapshots.md).
   * The VM stops; it never resumes. Absent: this hypervisor cannot make pod templates.
   */
  snapshot?(vmm: VmmRecord, paths: PodPaths, dir: string, options?: { signal?: AbortSignal }): Promise<SnapshotResult>;
  /**
   * Starts the VM of `spec` from a snapshot instead of booting it: the snapshot's vCPUs, memory
   * and guest state, `spec`'s wiring (sockets, NICs, console). Resolves once the VMM runs, as
   * `start` does; the agent then waits for `restored` (docs/snapshots.md).
   */
  restore?(spec: VmSpec, snapshot: SnapshotFiles, options?: { signal?: AbortSignal; step?: StepHook }): Promise<VmmRecord>;
  /**
   * Reads both files of a snapshot whole and checks them: what a restore checks, and the CRC-32C of
   * all of RAM, which a restore only samples. A damaged or mismatched file is TEMPLATE_CORRUPT,
   * naming the file and what differs. Absent where `snapshot` is.
   */
  verifySnapshot?(snapshot: SnapshotFiles, options?: { signal?: AbortSignal }): Promise<SnapshotCheck>;
  /** The VMM's version string, recorded in templates (a snapshot is read only by the vc-vmm that wrote its format). */
  vmmVersion?(): Promise<string>;
  /**
   * Removes what a VMM leaves behind: sockets and files in the pod directory and, given the VMM's
   * record, its cgroup (killing anything still in it).
   */
  cleanup(paths: PodPaths, vmm?: VmmRecord): Promise<void>;
}
