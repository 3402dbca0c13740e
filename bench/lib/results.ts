// The shape of bench/results/*.json. Sections that were not run (or failed) carry `skipped` or
// `error` instead of their figures; the headline keys are null then.
import type { Summary } from './stats.js';
import type { TargetId, TargetResult } from './targets.js';

export interface HostInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  /** From `vc-vmm caps`: kvm_intel / kvm_amd / kvm_pvm, or why /dev/kvm is unusable. */
  kvmFlavor: string;
  qemuVersion: string | null;
  node: string;
  loadAverage: number[];
}

export interface StartVariant {
  /** Request → first guest instruction (the guest's first port-0x80 write), ms. */
  firstInstructionMs: Summary;
  /** Request → the guest's "ready" line on the serial console as this process saw it, ms. */
  readyMs: Summary;
  /** Named parts of the first-instruction time, where the VMM reports them (ms). */
  parts?: Record<string, Summary>;
  failures: string[];
}

export interface VmmStartSection {
  skipped?: string;
  error?: string;
  runs: number;
  guest: { image: string; cmdline: string; memoryMiB: number; vcpus: number };
  /** QEMU's accelerator for the headline ratio: 'kvm' when it ran the guest on /dev/kvm here. */
  qemuAccel: 'kvm' | 'tcg' | null;
  qemuAccelNote: string;
  qemuCommand: string[];
  /** Headline medians/p95 of first-instruction time (ms). */
  builtinInprocessMs: Summary | null;
  builtinProcessMs: Summary | null;
  qemuMs: Summary | null;
  /** median(QEMU) ÷ median(built-in process), first instruction. */
  speedupVsQemu: number | null;
  speedupVsQemuReady: number | null;
  variants: Record<string, StartVariant>;
  /** bench-kvm-floor: open + KVM_CREATE_VM + memory slot + one vCPU (no guest code), ms. */
  kvmFloorMs: Summary | null;
  kvmFloorDetail: unknown;
  notes: string[];
}

export interface MemorySample {
  hypervisor: 'builtin' | 'qemu';
  vms: number;
  /** Per VM (means over the VMs of the sample), MiB. */
  rssMiB: number;
  pssMiB: number;
  guestRssMiB: number;
  guestPssMiB: number;
  nonGuestRssMiB: number;
  nonGuestPssMiB: number;
  /** System-wide MemAvailable drop while the VMs ran, per VM (includes KVM's kernel memory; noisy). */
  memAvailableDropPerVmMiB: number | null;
  secondsToReady: number;
}

export interface MemorySection {
  skipped?: string;
  error?: string;
  guestMiB: number;
  guest: string;
  qemuAccel: 'kvm' | 'tcg' | null;
  /** Per-VM RSS beyond guest RAM (what the guest touched) at `comparedAtVms` VMs. */
  builtinOverheadMiB: number | null;
  qemuOverheadMiB: number | null;
  overheadRatio: number | null;
  /** The same as PSS (shared pages split among the VMMs mapping them). */
  builtinOverheadPssMiB: number | null;
  qemuOverheadPssMiB: number | null;
  overheadRatioPss: number | null;
  comparedAtVms: number | null;
  samples: MemorySample[];
  notes: string[];
}

export interface RateRun {
  vms: number;
  seconds: number;
  vmsPerSecond: number;
  /** Per-VM spawn → first guest exit under this load, ms. */
  perVmFirstExitMs: Summary;
  failures: number;
}

export interface DensitySection {
  skipped?: string;
  error?: string;
  vmsPerSecond: number | null;
  rate: RateRun[];
  maxConcurrentVms: number | null;
  maxConcurrent: {
    limit: number;
    batch: number;
    reached: number;
    stoppedBecause: string;
    seconds: number;
    memAvailableDropMiB: number | null;
    leftoverProcesses: number;
  } | null;
  notes: string[];
}

export interface BenchResults {
  schema: 1;
  date: string;
  mode: 'quick' | 'full';
  only: string[] | null;
  durationSeconds: number;
  /** `git describe --always --dirty` of the tree that ran (the results are committed after it). */
  gitHead: string | null;
  host: HostInfo;
  vmmStart: VmmStartSection;
  memory: MemorySection;
  density: DensitySection;
  lifecycle: Record<string, unknown>;
  agent: Record<string, unknown> & { execRoundTripP50Ms: Record<string, number> | null };
  podNotes: string[];
  targets: Record<TargetId, TargetResult>;
  errors: { section: string; message: string }[];
  notes: string[];
}
