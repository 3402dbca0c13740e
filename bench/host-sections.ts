// The host sections (vmm, memory, density: the test guests on a /dev/kvm) run where the test
// guests can: on this host (L0) when testGuestHostProblem() is null, else all three in ONE boot of
// the nested harness's L1 (bench/hosts-inside.js), with the same side-by-side method and the L1
// plan's counts (bench/lib/plan.ts). Either way the result is the same three sections, each
// saying where it ran.
import { fileURLToPath } from 'node:url';
import { testGuestHostProblem } from '../test/harness/test-guest-host.js';
import { densityBenchmarks, memoryBenchmarks } from './density.js';
import { hostsInsideArgv, parseHostsReport, type HostSection } from './hosts-format.js';
import { runBenchInL1 } from './lib/in-l1.js';
import { hostPlan, type HostPlan } from './lib/plan.js';
import { killTracked } from './lib/proc.js';
import type { DensitySection, L1Info, MemorySection, VmmStartSection, Where } from './lib/results.js';
import { probeQemuAccel, vmmStartBenchmarks } from './vmm.js';

const INSIDE = fileURLToPath(new URL('./hosts-inside.js', import.meta.url));
/**
 * hosts-inside reports every step; a step in L1 takes at most a minute or two. Longer than the
 * plan's longest wait (120 s × its timeoutScale), so a slow step fails by itself first.
 */
const SILENCE_MS = 7 * 60_000;

export type Errors = { section: string; message: string }[];

export interface HostSections {
  vmmStart: VmmStartSection;
  memory: MemorySection;
  density: DensitySection;
  /** Set when they ran in L1. */
  l1: L1Info | null;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs one section; a throw is recorded in `errors` (every tracked process is killed) and
 * `onError`'s stand-in is returned, so the run goes on.
 */
export async function runSection<T>(name: string, run: () => Promise<T>, onError: (msg: string) => T, ctx: { errors: Errors; progress: (msg: string) => void }): Promise<T> {
  const s0 = Date.now();
  try {
    const out = await run();
    ctx.progress(`${name}: done in ${((Date.now() - s0) / 1000).toFixed(1)} s`);
    return out;
  } catch (err) {
    const msg = errorText(err);
    ctx.progress(`${name}: FAILED: ${msg}`);
    ctx.errors.push({ section: name, message: msg });
    const left = await killTracked();
    if (left) ctx.errors.push({ section: name, message: `${left} processes survived the cleanup after the failure` });
    return onError(msg);
  }
}

type Outcome = { skipped: string } | { error: string };

export function skippedVmm(why: Outcome, where: Where | null): VmmStartSection {
  return {
    ...why, where,
    runs: 0, guest: { image: '', cmdline: '', memoryMiB: 0, vcpus: 0 }, qemuAccel: null, qemuAccelNote: '', qemuCommand: [],
    builtinInprocessMs: null, builtinProcessMs: null, qemuMs: null, speedupVsQemu: null, speedupVsQemuReady: null,
    variants: {}, kvmFloorMs: null, kvmFloorDetail: null, notes: [],
  };
}
export function skippedMemory(why: Outcome, where: Where | null): MemorySection {
  return {
    ...why, where,
    guestMiB: 0, guest: '', qemuAccel: null, builtinOverheadMiB: null, qemuOverheadMiB: null, overheadRatio: null,
    builtinOverheadPssMiB: null, qemuOverheadPssMiB: null, overheadRatioPss: null, comparedAtVms: null, samples: [], notes: [],
  };
}
export function skippedDensity(why: Outcome, where: Where | null): DensitySection {
  return { ...why, where, vmsPerSecond: null, rate: [], maxConcurrentVms: null, maxConcurrent: null, notes: [] };
}

const NOT_SELECTED = { skipped: 'not selected (--only)' };

/** The selected sections here, in this process, with `plan`'s counts; unselected ones are skipped. */
/** What a selected section that has not finished yet is recorded as (in a report sent before the end). */
export const UNFINISHED = 'not finished: the run ended before this section did';

/**
 * The selected sections here, in this process, with `plan`'s counts; unselected ones are skipped.
 * `onSection` gets the results so far after each section (later selected ones marked UNFINISHED).
 */
export async function runHostSectionsHere(
  sections: readonly HostSection[], plan: HostPlan,
  ctx: { errors: Errors; progress: (msg: string) => void; onSection?: (sofar: Omit<HostSections, 'l1'>) => void },
): Promise<Omit<HostSections, 'l1'>> {
  const opts = { plan, onProgress: ctx.progress };
  const where = plan.where;
  const pending = { error: UNFINISHED };
  const r = {
    vmmStart: sections.includes('vmm') ? skippedVmm(pending, where) : skippedVmm(NOT_SELECTED, null),
    memory: sections.includes('memory') ? skippedMemory(pending, where) : skippedMemory(NOT_SELECTED, null),
    density: sections.includes('density') ? skippedDensity(pending, where) : skippedDensity(NOT_SELECTED, null),
  };
  if (sections.includes('vmm')) {
    r.vmmStart = await runSection('vmmStart', () => vmmStartBenchmarks(opts), (m) => skippedVmm({ error: m }, where), ctx);
    ctx.onSection?.(r);
  }
  if (sections.includes('memory')) {
    // Memory compares with QEMU on the accelerator the start section chose (probed here if it did not run).
    let qemuAccel = r.vmmStart.qemuAccel;
    if (qemuAccel === null && r.vmmStart.runs === 0) qemuAccel = (await probeQemuAccel(plan.timeoutScale)).accel;
    r.memory = await runSection('memory', () => memoryBenchmarks({ ...opts, qemuAccel }), (m) => skippedMemory({ error: m }, where), ctx);
    ctx.onSection?.(r);
  }
  if (sections.includes('density')) {
    r.density = await runSection('density', () => densityBenchmarks(opts), (m) => skippedDensity({ error: m }, where), ctx);
    ctx.onSection?.(r);
  }
  return r;
}

/**
 * The selected sections in L1. An L1 that stops before they are done (silent, its kernel panicked:
 * docs/nested-harness.md) is recorded in `errors`, and the sections it did not finish run once
 * more in a fresh L1; `l1.rerunAfter` then says why.
 */
export async function runHostSectionsInL1(sections: readonly HostSection[], full: boolean, why: string, ctx: { errors: Errors; progress: (msg: string) => void }): Promise<HostSections> {
  return withOneRerun(sections, (which) => hostSectionsInOneL1(which, full, why, ctx), ctx);
}

/** runHostSectionsInL1's rule, over `once` (one L1 boot for the given sections). */
export async function withOneRerun(sections: readonly HostSection[], once: (which: readonly HostSection[]) => Promise<HostSections>, ctx: { errors: Errors; progress: (msg: string) => void }): Promise<HostSections> {
  const first = await once(sections);
  const stopped = (first.l1 === null ? ctx.errors.at(-1)?.message : first.l1.failed)?.split('\n')[0];
  const cutShort = (s: HostSection) => {
    const e = outcomeOf(first, s).error;
    return e !== undefined && (e.startsWith(UNFINISHED) || e.startsWith('nested L1:'));
  };
  const again = stopped ? sections.filter(cutShort) : [];
  if (again.length === 0) return first;
  ctx.progress(`host sections in L1: ${again.join(', ')} once more in a fresh L1 (the first stopped: ${stopped})`);
  const second = await once(again);
  return {
    vmmStart: again.includes('vmm') ? second.vmmStart : first.vmmStart,
    memory: again.includes('memory') ? second.memory : first.memory,
    density: again.includes('density') ? second.density : first.density,
    l1: second.l1 ? { ...second.l1, rerunAfter: stopped } : first.l1,
  };
}

function outcomeOf(r: HostSections, s: HostSection): { error?: string } {
  return s === 'vmm' ? r.vmmStart : s === 'memory' ? r.memory : r.density;
}

/** The selected sections inside one L1 boot; an L1 that fails makes each of them an error. */
async function hostSectionsInOneL1(sections: readonly HostSection[], full: boolean, why: string, ctx: { errors: Errors; progress: (msg: string) => void }): Promise<HostSections> {
  const plan = hostPlan(full, 'l1');
  const progress = (msg: string) => ctx.progress(`host sections in L1: ${msg}`);
  progress(`${sections.join(', ')} in one L1 VM of the nested-KVM harness, because this host cannot run the test guests (${why})`);
  if (plan.scaled.length) progress(`scaled for L1: ${plan.scaled.join('; ')}`);
  const s0 = Date.now();
  try {
    const r = await runBenchInL1({
      script: INSIDE,
      argv: hostsInsideArgv({ full, sections: [...sections] }),
      timeoutMs: (full ? 60 : 15) * 60_000,
      silenceMs: SILENCE_MS,
      memoryMiB: plan.l1MemoryMiB ?? undefined,
      parse: parseHostsReport,
      onProgress: progress,
      rerunIfStopped: false, // runHostSectionsInL1 reruns only the sections left unfinished
    });
    ctx.errors.push(...r.report.errors.map((e) => ({ section: e.section, message: `in L1: ${e.message}` })));
    // An L1 that failed after reporting some sections keeps them; the rest say why they are missing.
    const cut = r.failure ? `nested L1: ${r.failure.split('\n')[0]}` : null;
    if (cut) {
      progress(`L1 failed after its last report; keeping the sections it finished: ${r.failure}`);
      ctx.errors.push({ section: 'host sections in L1', message: cut });
    } else progress(`done in ${((Date.now() - s0) / 1000).toFixed(1)} s (L1 boot ${(r.bootMs / 1000).toFixed(1)} s)`);
    const unfinished = <T extends { error?: string }>(x: T): T => (cut && x.error === UNFINISHED ? { ...x, error: `${UNFINISHED} (${cut})` } : x);
    return {
      vmmStart: unfinished(r.report.vmmStart),
      memory: unfinished(r.report.memory),
      density: unfinished(r.report.density),
      l1: { why, host: r.report.host, bootSeconds: round1(r.bootMs / 1000), totalSeconds: round1(r.totalMs / 1000), scaled: plan.scaled, ...(cut ? { failed: cut } : {}) },
    };
  } catch (err) {
    const message = `nested L1: ${errorText(err).split('\n')[0]}`;
    progress(`FAILED: ${errorText(err)}`);
    ctx.errors.push({ section: 'host sections in L1', message });
    const pick = <T>(s: HostSection, make: (o: Outcome, w: Where | null) => T) => (sections.includes(s) ? make({ error: message }, 'l1') : make(NOT_SELECTED, null));
    return { vmmStart: pick('vmm', skippedVmm), memory: pick('memory', skippedMemory), density: pick('density', skippedDensity), l1: null };
  }
}

/**
 * Where the host sections run: here when this host runs the test guests (scripts/test.js asks
 * the same for test/kvm), else L1, with the reason.
 */
export function hostSectionsWhere(): { where: Where; why: string | null } {
  let problem: string | null;
  try {
    problem = testGuestHostProblem();
  } catch (err) {
    problem = `the KVM probe failed: ${errorText(err)}`;
  }
  return problem === null ? { where: 'l0', why: null } : { where: 'l1', why: problem };
}

/** The selected host sections where they can run. */
export async function hostSections(sections: readonly HostSection[], full: boolean, ctx: { errors: Errors; progress: (msg: string) => void }): Promise<HostSections> {
  const { where, why } = hostSectionsWhere();
  if (where === 'l1') return runHostSectionsInL1(sections, full, why!, ctx);
  ctx.progress(`host sections: ${sections.join(', ')} on this host (L0: it runs the test guests)`);
  return { ...(await runHostSectionsHere(sections, hostPlan(full, 'l0'), ctx)), l1: null };
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
