// The shape of bench/results/*.json. Sections that were not run (or failed) carry `skipped` or
// `error` instead of their figures; the headline keys are null then. Every section says where it
// ran: `l0` on this host, `l1` inside the nested harness's L1 (a TCG-emulated VM, where absolute
// times are inflated many-fold and only ratios compare with L0); null when it did not run.
import type { ContainerdSection } from '../containerd-format.js';
import type { NetworkSection } from '../network-format.js';
import type { TemplatesSection } from '../templates-format.js';
import type { Summary } from './stats.js';
import type { TargetId, TargetResult } from './targets.js';

/** Where a section ran: this host (L0) or the nested-KVM harness's L1. */
export type Where = 'l0' | 'l1';

/** The L1 VM the host sections ran in (on hosts whose /dev/kvm cannot run the test guests). */
export interface L1Info {
  /** Why not at L0: the test-guest host check's answer here. */
  why: string;
  /** L1 as hostInfo() saw it from inside. */
  host: HostInfo;
  bootSeconds: number;
  totalSeconds: number;
  /** What the L1 plan measures less (or waits longer for) than L0's, one phrase each. */
  scaled: string[];
  /** Set when L1 failed after reporting some sections: why (the unfinished ones say so). */
  failed?: string;
  /** Set when the sections an earlier L1 left unfinished ran in this one: why that L1 stopped. */
  rerunAfter?: string;
}

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
  where: Where | null;
  runs: number;
  guest: { image: string; cmdline: string; memoryMiB: number; vcpus: number };
  /** QEMU's accelerator for the headline ratio: 'kvm' when it ran the guest on /dev/kvm here. */
  qemuAccel: 'kvm' | 'tcg' | null;
  qemuAccelNote: string;
  qemuCommand: string[];
  /** Headline medians/p95 of first-instruction time (ms). */
  builtinInprocessMs: Summary | null;
  builtinProcessMs: Summary | null;
  /** Through `vc-vmm launcher` (a pre-forked spare runs it); absent in results before 2026-12-07. */
  builtinLauncherMs?: Summary | null;
  qemuMs: Summary | null;
  /** median(QEMU) ÷ median(built-in process), first instruction. */
  speedupVsQemu: number | null;
  speedupVsQemuReady: number | null;
  /** median(QEMU) ÷ median(built-in through its launcher), first instruction. */
  speedupVsQemuLauncher?: number | null;
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
  where: Where | null;
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
  where: Where | null;
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
  /**
   * 2: sections carry `where`, targets `judgedBy`, and `l1` describes the L1 the host sections ran
   * in. 3: the `network` section (bench/network-format.ts) and its targets. 4: the `containerd`
   * section (bench/containerd-format.ts). 5: the `templates` section.
   */
  schema: 2 | 3 | 4 | 5;
  date: string;
  mode: 'quick' | 'full';
  only: string[] | null;
  durationSeconds: number;
  /** `git describe --always --dirty` of the tree that ran (the results are committed after it). */
  gitHead: string | null;
  host: HostInfo;
  /** Set when the host sections (vmm, memory, density) ran in L1. */
  l1: L1Info | null;
  vmmStart: VmmStartSection;
  memory: MemorySection;
  density: DensitySection;
  lifecycle: Record<string, unknown> & { where?: Where | null };
  agent: Record<string, unknown> & { where?: Where | null; execRoundTripP50Ms: Record<string, number> | null };
  podNotes: string[];
  /** Absent in results from before schema 3. */
  network?: NetworkSection;
  /** Absent in results from before schema 4. */
  containerd?: ContainerdSection;
  /** Pods from a template against cold-booted pods (bench/templates-format.ts). Absent before schema 5. */
  templates?: TemplatesSection;
  /**
   * Judged by bench/lib/targets.ts. Results from before 2026-12-07 have `firstInstructionInprocessMs`
   * and `firstInstructionProcessMs` (absolute start times, now dropped; the figures stay in
   * `vmmStart`) and none of the agent, template and in-process ÷ floor ratios.
   */
  targets: Record<TargetId, TargetResult>;
  errors: { section: string; message: string }[];
  notes: string[];
}
