// The vc-vmm configuration for a pod (docs/vmm.md "Configuration"), as pure functions so they can be
// unit-tested without KVM.
import { VcError } from '../../errors.js';
import type { CgroupLimits } from '../../model/cgroup.js';
import type { PodPaths } from '../../store/paths.js';
import { kvmCmdline } from '../cmdline.js';
import type { SnapshotCheck, VmSpec } from '../types.js';

/** The agent's vsock port (native/agent/main.cc) and the guest's context id. */
export const AGENT_VSOCK_PORT = 1024;
export const GUEST_CID = 3;
/** Read-only virtio-blk slots for container images: the most distinct images a running pod holds. */
export const IMAGE_SLOTS = 8;

export function vmmConfig(spec: VmSpec): Record<string, unknown> {
  const { paths } = spec;
  return {
    kernel: spec.kernelPath,
    initrd: spec.initrdPath,
    cmdline: kvmCmdline(spec.kernelCmdline),
    vcpus: spec.vcpus,
    memoryMiB: spec.memoryMiB,
    serialOutput: paths.console,
    controlSocket: paths.controlSocket,
    vsock: { guestCid: GUEST_CID, udsPath: paths.agentSocket },
    rng: true,
    blocks: Array.from({ length: IMAGE_SLOTS }, () => ({ readOnly: true })),
    // Opened by name: vc-vmm runs inside the pod's network namespace, where the taps are.
    ...(spec.network ? { net: spec.network.nics.map((nic) => ({ tap: nic.tap, mac: nic.mac, mtu: nic.mtu })) } : {}),
  };
}

/**
 * CPU the pod's cgroup allows the VMM beyond its vCPUs: its device thread (virtio queues, the
 * vsock backend, block and network I/O) works on the guest's behalf while the vCPUs run. With the
 * vCPUs' worth alone, agent I/O in L1 had the VMM throttled in 7 of 42 CFS periods of an 8 MiB
 * stdout transfer and 17 of 31 (318 ms) of a stdin one, each throttling stopping the guest until
 * the next 100 ms period (QEMU, which has no such cgroup here, was not held back at all).
 */
export const VMM_DEVICE_THREAD_CPUS = 0.5;

/**
 * What the pod's cgroup allows the VMM: its vCPUs' worth of CPU time plus VMM_DEVICE_THREAD_CPUS,
 * guest RAM plus room for the VMM itself and the kernel's per-VM structures, and its threads (one
 * per vCPU, the device thread, the main thread) with margin. A VM that will be snapshotted (a
 * template's source) writes all of its RAM into the memory file, and that file's page cache is
 * charged to the group too: it gets room for it, or the memory controller kills it mid-write (seen
 * in L1: SIGKILL, no answer).
 */
export function cgroupLimits(spec: Pick<VmSpec, 'vcpus' | 'memoryMiB' | 'snapshotDir'>): CgroupLimits {
  const overheadMiB = 64 + (spec.snapshotDir ? spec.memoryMiB : 0);
  return { cpus: spec.vcpus + VMM_DEVICE_THREAD_CPUS, memoryBytes: (spec.memoryMiB + overheadMiB) * 1024 * 1024, pidsMax: spec.vcpus + 16 };
}

/** The cgroup's name: the pod id plus a hash of its directory, since two state roots may reuse an id. */
export function cgroupName(id: string, paths: Pick<PodPaths, 'dir'>, hash: (text: string) => string): string {
  return `${id.slice(0, 44)}-${hash(paths.dir).slice(0, 12)}`;
}

export function vmmArgs(paths: Pick<PodPaths, 'vmmConfig' | 'vmmLog'>, cgroupDirs: readonly string[], jail: readonly string[] = [], snapshotDir?: string): string[] {
  return [
    'run', '--config', paths.vmmConfig, '--detach', '--log', paths.vmmLog, ...cgroupDirs.flatMap((dir) => ['--cgroup', dir]), ...jail,
    // Opened by vc-vmm before it enters the jail: the only place its snapshot op may write.
    ...(snapshotDir ? ['--snapshot-dir', snapshotDir] : []),
  ];
}

/** The sizes in the snapshot op's answer ({"bytes":{"state":N,"memory":M}}); HYPERVISOR_FAILED naming what is missing. */
export function snapshotBytes(answer: Record<string, unknown>): { state: number; memory: number } {
  const bytes = answer.bytes as { state?: unknown; memory?: unknown } | undefined;
  const ok = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!bytes || !ok(bytes.state) || !ok(bytes.memory)) {
    throw new VcError('HYPERVISOR_FAILED', `vc-vmm snapshot: the answer has no bytes {state, memory}: ${JSON.stringify(answer).slice(0, 200)}`);
  }
  return { state: bytes.state, memory: bytes.memory };
}

/** How a `vc-vmm` child ended, as Node's execFile reports it (null: it exited 0). */
export type ChildEnd = (Error & { code?: unknown; killed?: boolean; signal?: string | null }) | null;

/**
 * Why `vc-vmm run|restore --detach` gave no pid, for HYPERVISOR_FAILED: what it printed on stderr,
 * else how it ended — a child killed at the time limit or by a signal says nothing itself, and
 * execFile's own message is only "Command failed: <the command line>".
 */
export function detachFailure(end: ChildEnd, stderr: string, stdout: string, timeoutMs: number): string {
  const said = stderr.trim();
  if (said) return said;
  if (!end) return `no pid in ${JSON.stringify(stdout)}`;
  if (end.killed) return `vc-vmm did not answer within ${timeoutMs / 1000} s and was killed (${end.signal ?? 'no signal'})`;
  if (typeof end.code === 'number') return `vc-vmm exited with code ${end.code} and printed nothing`;
  if (end.signal) return `vc-vmm was killed by ${end.signal}`;
  return end.message;
}

/** `vc-vmm snapshot verify`'s one JSON line; null when it is not one (the caller says what came instead). */
export function snapshotCheckOf(stdout: string): SnapshotCheck | null {
  let answer: { ok?: unknown; vcpus?: unknown; ramBytes?: unknown; ramCrc?: unknown };
  try {
    answer = JSON.parse(stdout.trim()) as typeof answer;
  } catch {
    return null;
  }
  const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
  if (answer?.ok !== true || !count(answer.vcpus) || !count(answer.ramBytes) || typeof answer.ramCrc !== 'string' || !/^0x[0-9a-f]{8}$/.test(answer.ramCrc)) return null;
  return { vcpus: answer.vcpus, ramBytes: answer.ramBytes, ramCrc: answer.ramCrc };
}

/** `vc-vmm restore`: `run`'s options, plus the snapshot's files (docs/snapshots.md, "Restore"). */
export function vmmRestoreArgs(paths: Pick<PodPaths, 'vmmConfig' | 'vmmLog'>, snapshot: { state: string; memory: string }, cgroupDirs: readonly string[], jail: readonly string[] = []): string[] {
  const run = vmmArgs(paths, cgroupDirs, jail);
  return ['restore', '--state', snapshot.state, '--memory', snapshot.memory, ...run.slice(1)];
}

/**
 * How the VMM `pid` ended, from the line its monitor (`vc-vmm monitor`, native/vmm/cmd/monitor.cc)
 * wrote to the VMM log: "killed by SIGSYS (a system call its seccomp filter does not allow)",
 * "exited with code 1"; null when the log has no such line for that pid.
 */
export function vmmEndFromLog(log: string, pid: number): string | null {
  let found: string | null = null;
  let stopped: string | null = null; // the VMM's own last word before its monitor's line
  const prefix = `vc-vmm monitor: the VMM (pid ${pid}) `;
  for (const line of log.split('\n')) {
    if (line.startsWith('vc-vmm: VM stopped: ')) stopped = line.slice('vc-vmm: '.length);
    if (!line.startsWith(prefix)) {
      if (line.startsWith('vc-vmm monitor: ')) stopped = null; // that word was another VMM's
      continue;
    }
    const rest = line.slice(prefix.length);
    const killed = /^was killed by signal \d+ \((SIG\w+|SIG\?)\)(?:: (.+))?$/.exec(rest);
    const exited = /^exited with code (\d+)$/.exec(rest);
    if (killed) found = `killed by ${killed[1]}${killed[2] ? ` (${killed[2]})` : ''}`;
    // A VMM that exits on its own says why first (a triple fault's registers, a KVM failure).
    else if (exited) found = `exited with code ${exited[1]}${exited[1] !== '0' && stopped ? `: ${stopped.slice(0, 300)}` : ''}`;
    stopped = null;
  }
  return found;
}
