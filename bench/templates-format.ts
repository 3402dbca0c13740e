// The pure parts of bench/templates.ts: the argv of bench/templates-inside.ts, its report, and the
// section the results carry (pods started from a template against cold-booted pods, the built-in
// VMM, side by side in one run: issue 18 item 3).
import { parseBenchJsonLine } from './lib/bench-json.js';
import { round } from './lib/stats.js';
import type { Where } from './lib/results.js';
import { spread, type Spread } from './pods-format.js';

export interface TemplatesInsideArgs {
  /** Pods of each kind, all running at once when their memory is read. */
  pods: number;
  memoryMiB: number;
}

/** What bench/templates-measure.ts gives; a failure is `{ error }` with what was measured before it. */
export interface TemplatesMeasurement {
  /** startPod of each cold-booted pod (VMM start until the agent answers), ms. */
  coldStartMs: number[];
  /** startPod of each pod created from the template, ms. */
  warmStartMs: number[];
  /** PSS of each pod's VMM process tree with all pods of its kind running and idle, KiB. */
  coldPssKiB: number[];
  warmPssKiB: number[];
  /** Where each start's time went (startParts), in the order of coldStartMs / warmStartMs; null where steps were missing. */
  coldParts?: (StartParts | null)[];
  warmParts?: (StartParts | null)[];
  /** createTemplate: a pod booted, snapshotted and stopped, ms. */
  templateCreateMs: number | null;
  /** The template's files on disk. */
  templateBytes: number | null;
  error?: string;
}

export interface TemplatesInsideReport {
  version: 1;
  kernel: string;
  nestedL1: boolean;
  args: TemplatesInsideArgs;
  result: TemplatesMeasurement | { error: string };
}

export interface TemplatesSection {
  skipped?: string;
  error?: string;
  where: Where | null;
  pods: number;
  memoryMiB: number;
  coldStartMs: Spread | null;
  warmStartMs: Spread | null;
  /** Mean PSS per pod, MiB, with every pod of that kind running. */
  coldPssMiBPerPod: number | null;
  warmPssMiBPerPod: number | null;
  templateCreateMs: number | null;
  templateMiB: number | null;
  /** The median of each part of a start (startParts), per kind; null without a complete set. */
  coldPartsP50Ms?: StartParts | null;
  warmPartsP50Ms?: StartParts | null;
  /** warm ÷ cold: the medians of start → agent ready, and the mean PSS per pod. */
  startVsColdBoot: number | null;
  pssVsColdBoot: number | null;
  notes: string[];
}

/**
 * Where one startPod's time went, ms, from the steps it published (src/step-timing.ts):
 * beforeVmm from the call to the VMM's launch (the lock, the template check, the records, and the
 * host network, which hostNetwork is the part of: namespace, CNI, taps; cni the CNI plugins' part
 * of that, 0 without CNI); vmmLaunch until vc-vmm
 * says the VM runs (a cold boot's or a restore's set-up); agent until the agent answers (the boot,
 * or the restored guest's first answer); reseed the restored agent's `restored` (0 cold);
 * guestNetwork the agent told the pod's network; rest what follows until startPod returns.
 */
export interface StartParts {
  beforeVmm: number;
  hostNetwork: number;
  cni: number;
  vmmLaunch: number;
  agent: number;
  reseed: number;
  guestNetwork: number;
  rest: number;
}

const PART_NAMES = ['beforeVmm', 'hostNetwork', 'cni', 'vmmLaunch', 'agent', 'reseed', 'guestNetwork', 'rest'] as const;

/** StartParts from one start's steps (`at` on the clock of t0 and t1), or null when a step it needs is missing. */
export function startParts(steps: readonly { step: string; at: number }[], t0: number, t1: number): StartParts | null {
  const at = (name: string) => steps.find((s) => s.step === name)?.at;
  const [recorded, networkMade, cgroup, detached, ready, configured] = ['starting-recorded', 'network-made', 'cgroup-created', 'vmm-detached', 'agent-ready', 'network-configured'].map(at);
  if ([recorded, networkMade, cgroup, detached, ready, configured].some((v) => v === undefined)) return null;
  const reseeded = at('agent-reseeded') ?? ready!;
  const [netnsMade, cniAdded] = [at('netns-made'), at('cni-added')];
  const ms = (v: number) => round(v, 1);
  return {
    beforeVmm: ms(cgroup! - t0),
    hostNetwork: ms(networkMade! - recorded!),
    cni: cniAdded === undefined ? 0 : ms(cniAdded - (netnsMade ?? recorded!)),
    vmmLaunch: ms(detached! - cgroup!),
    agent: ms(ready! - detached!),
    reseed: ms(reseeded - ready!),
    guestNetwork: ms(configured! - reseeded),
    rest: ms(t1 - configured!),
  };
}

/** The median of each part over the starts, or null unless every start has its parts. */
export function partsP50(parts: readonly (StartParts | null)[] | undefined, n: number): StartParts | null {
  if (!parts || parts.length !== n || n === 0 || parts.some((p) => p === null)) return null;
  const out = {} as StartParts;
  for (const name of PART_NAMES) out[name] = spread(parts.map((p) => p![name])).p50;
  return out;
}

export function templatesInsideArgv(a: TemplatesInsideArgs): string[] {
  return ['--pods', String(a.pods), '--memory-mib', String(a.memoryMiB)];
}

export function parseTemplatesInsideArgs(argv: readonly string[]): TemplatesInsideArgs {
  const args: TemplatesInsideArgs = { pods: 10, memoryMiB: 256 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const raw = argv[i + 1];
    const v = Number(raw);
    if (flag !== '--pods' && flag !== '--memory-mib') throw new Error(`unknown argument ${JSON.stringify(flag)} (expected --pods N, --memory-mib N)`);
    if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(v) || v < 1) throw new Error(`${flag}: expected a positive integer, got ${JSON.stringify(raw)}`);
    if (flag === '--pods') args.pods = v;
    else args.memoryMiB = v;
  }
  return args;
}

export function parseTemplatesReport(output: string): TemplatesInsideReport {
  const r = parseBenchJsonLine(output);
  if (!r.result || typeof r.result !== 'object' || !r.args || typeof r.args !== 'object') {
    throw new Error(`the BENCH-JSON line is not a templates report: ${JSON.stringify(r).slice(0, 200)}`);
  }
  return r as unknown as TemplatesInsideReport;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && a >= 0 && b > 0 ? round(a / b, 4) : null);

/** The section from a measurement: ratios only from complete sets (every pod of both kinds). */
export function templatesSection(m: TemplatesMeasurement | { error: string }, args: TemplatesInsideArgs, where: Where, notes: string[]): TemplatesSection {
  const base: TemplatesSection = {
    where, pods: args.pods, memoryMiB: args.memoryMiB, coldStartMs: null, warmStartMs: null,
    coldPssMiBPerPod: null, warmPssMiBPerPod: null, templateCreateMs: null, templateMiB: null,
    startVsColdBoot: null, pssVsColdBoot: null, notes,
  };
  if (!('coldStartMs' in m)) return { ...base, error: m.error };
  const full = (xs: readonly number[]) => xs.length === args.pods;
  const coldStart = full(m.coldStartMs) ? spread(m.coldStartMs) : null;
  const warmStart = full(m.warmStartMs) ? spread(m.warmStartMs) : null;
  const coldPss = full(m.coldPssKiB) ? mean(m.coldPssKiB)! / 1024 : null;
  const warmPss = full(m.warmPssKiB) ? mean(m.warmPssKiB)! / 1024 : null;
  return {
    ...base,
    ...(m.error ? { error: m.error } : {}),
    coldStartMs: coldStart,
    warmStartMs: warmStart,
    coldPssMiBPerPod: coldPss === null ? null : round(coldPss, 2),
    warmPssMiBPerPod: warmPss === null ? null : round(warmPss, 2),
    templateCreateMs: m.templateCreateMs === null ? null : round(m.templateCreateMs, 1),
    templateMiB: m.templateBytes === null ? null : round(m.templateBytes / 1048576, 1),
    startVsColdBoot: ratio(warmStart?.p50 ?? null, coldStart?.p50 ?? null),
    pssVsColdBoot: ratio(warmPss, coldPss),
    coldPartsP50Ms: partsP50(m.coldParts, args.pods),
    warmPartsP50Ms: partsP50(m.warmParts, args.pods),
  };
}

/** A section that did not run (`why`: not selected, …), or null `why` as the base of a failed one. */
export function skippedTemplates(why: string | null): TemplatesSection {
  return {
    ...(why ? { skipped: why } : {}), where: null, pods: 0, memoryMiB: 0, coldStartMs: null, warmStartMs: null,
    coldPssMiBPerPod: null, warmPssMiBPerPod: null, templateCreateMs: null, templateMiB: null,
    startVsColdBoot: null, pssVsColdBoot: null, notes: [],
  };
}

/** The section in latest.md: what was measured, or why nothing was. */
export function renderTemplatesMarkdown(t: TemplatesSection, where: string): string[] {
  const L = ['## Pods from a template (`templates`)', ''];
  if (t.skipped) return [...L, `Skipped: ${t.skipped}.`, ''];
  L.push(where, '');
  if (t.error) L.push(`**Failed**: ${t.error}`, '');
  const ms = (s: Spread | null) => (s ? `${s.p50} ms (min ${s.min}, max ${s.max}, n ${s.n})` : '—');
  const num = (v: number | null, unit = '') => (v === null ? '—' : `${v}${unit}`);
  L.push('| figure | cold boot | from the template | template ÷ cold |', '|---|---|---|---|');
  L.push(`| start → agent ready, median | ${ms(t.coldStartMs)} | ${ms(t.warmStartMs)} | ${num(t.startVsColdBoot)} |`);
  L.push(`| PSS per idle pod, ${t.pods} running | ${num(t.coldPssMiBPerPod, ' MiB')} | ${num(t.warmPssMiBPerPod, ' MiB')} | ${num(t.pssVsColdBoot)} |`);
  if (t.coldPartsP50Ms || t.warmPartsP50Ms) {
    const part = (p: StartParts | null | undefined, name: keyof StartParts) => (p ? `${p[name]} ms` : '—');
    L.push('', 'Where a start\'s time goes (median of each part; hostNetwork is part of beforeVmm, cni of hostNetwork):', '', '| part | cold boot | from the template |', '|---|---|---|');
    for (const name of PART_NAMES) L.push(`| ${name} | ${part(t.coldPartsP50Ms, name)} | ${part(t.warmPartsP50Ms, name)} |`);
  }
  L.push('', `Making the template: ${num(t.templateCreateMs, ' ms')}; its files: ${num(t.templateMiB, ' MiB')}.`, '');
  for (const n of t.notes) L.push(`- ${n}`);
  if (t.notes.length) L.push('');
  return L;
}
