// How much the host sections (vmm, memory, density) measure, by mode and by where they run. At
// L0 the counts are the ones bench/README.md states. In L1 (the nested harness's TCG-emulated VM,
// for hosts whose /dev/kvm cannot run the test guests) the counts stay the same but two in quick
// mode, every wait is longer and the memory kept free is L1's; `scaled` says what differs from L0
// so the results can state it.
import type { Where } from './results.js';

export interface HostPlan {
  where: Where;
  /** Start runs per variant (interleaved), after one untimed round. */
  startRuns: number;
  /** bench-kvm-floor iterations. */
  floorIterations: number;
  /** VMs started at once per memory sample. */
  memoryCounts: { builtin: number[]; qemu: number[] };
  /** VMs-per-second runs: this many vc-vmm processes at once, this many times. */
  rateVms: number;
  rateRuns: number;
  /** Most VMs held at once: up to this many, in batches of `maxBatch`. */
  maxVms: number;
  maxBatch: number;
  /** Stop piling up VMs when MemAvailable falls below this (MiB). */
  memFloorMiB: number;
  /** Every wait (a VM's "ready", a VMM's stop, QEMU's run) is this many times its L0 bound. */
  timeoutScale: number;
  /** L1's memory (MiB) when the sections run there; null at L0. */
  l1MemoryMiB: number | null;
  /** What differs from the L0 plan of the same mode, one phrase each (empty at L0). */
  scaled: string[];
}

function l0Plan(full: boolean): HostPlan {
  return {
    where: 'l0',
    startRuns: full ? 60 : 20,
    floorIterations: full ? 200 : 50,
    memoryCounts: { builtin: [1, 10, 100], qemu: full ? [1, 10, 100] : [1, 10] },
    rateVms: full ? 200 : 100,
    rateRuns: full ? 5 : 3,
    maxVms: full ? 2500 : 1000,
    maxBatch: 50,
    // The machine is shared: leave the other work 3 GiB.
    memFloorMiB: 3072,
    timeoutScale: 1,
    l1MemoryMiB: null,
    scaled: [],
  };
}

function l1Plan(full: boolean): HostPlan {
  const base = l0Plan(full);
  // The same counts as at L0, so that the ratios compare like with like, except in quick mode: at
  // most 500 VMs held at once (1000 took 84 s of L1's time, start and stop, ≈ 40% of the three
  // sections' 3.6 min, and with the pod section's ≈ 5 min the quick bench must stay ≈ 8 min), and
  // 50 VMs at once for VMs/s.
  const plan: HostPlan = {
    ...base,
    where: 'l1',
    maxVms: full ? base.maxVms : 500,
    // 100 vc-vmm forked at once left L1's two vCPUs in soft lockups for minutes once (2026-12-06,
    // the host loaded by another L1); 50 at once never did.
    rateVms: full ? base.rateVms : 50,
    // L1's memory is its own (its size bounds what it takes from the host): keep only enough for L1's node and kernel.
    memFloorMiB: 512,
    // Processes start 10–40× slower than at L0 (QEMU ≈ 0.6 s median, seconds at p95); 3× keeps the
    // longest wait (memory's 120 s) at 6 min, under host-sections.ts's 7-minute silence bound.
    timeoutScale: 3,
    // QEMU × 100 (≈ 35 MiB each) and 2500 idle VMs (≈ 2 MiB each with L1's kernel) need more than the harness's default 4 GiB.
    l1MemoryMiB: full ? 8192 : 4096,
    scaled: [],
  };
  plan.scaled = describeScaling(base, plan);
  return plan;
}

/** The plan for `full` or quick mode where the sections run. */
export function hostPlan(full: boolean, where: Where): HostPlan {
  return where === 'l0' ? l0Plan(full) : l1Plan(full);
}

/** One phrase per count that differs between the L0 plan and `plan`. */
export function describeScaling(l0: HostPlan, plan: HostPlan): string[] {
  const out: string[] = [];
  const diff = (what: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${what}: ${fmt(b)} (L0: ${fmt(a)})`);
  };
  diff('start runs per variant', l0.startRuns, plan.startRuns);
  diff('KVM floor iterations', l0.floorIterations, plan.floorIterations);
  diff('memory, built-in VM counts', l0.memoryCounts.builtin, plan.memoryCounts.builtin);
  diff('memory, QEMU VM counts', l0.memoryCounts.qemu, plan.memoryCounts.qemu);
  diff('VMs/s, VMs at once', l0.rateVms, plan.rateVms);
  diff('VMs/s, runs', l0.rateRuns, plan.rateRuns);
  diff('most VMs held at once, limit', l0.maxVms, plan.maxVms);
  diff('MemAvailable kept free, MiB', l0.memFloorMiB, plan.memFloorMiB);
  diff('time limits, × L0', l0.timeoutScale, plan.timeoutScale);
  return out;
}

function fmt(v: unknown): string {
  return Array.isArray(v) ? v.join('/') : String(v);
}
