// The pure parts of the containerd benchmark (bench/containerd.ts): runtime names and their shim
// binaries, the results' `containerd` section (each runtime's figures, ratios against runc) and
// its Markdown table.
import { escapeMd, fmt } from './lib/report.js';
import type { Where } from './lib/results.js';
import { round, type Summary } from './lib/stats.js';

/** The control every other runtime is compared with: Debian's runc shim. */
export const CONTROL_RUNTIME = 'io.containerd.runc.v2';
/** Measured by default: the control and our shim (skipped, saying so, while its binary is absent). */
export const DEFAULT_RUNTIMES: readonly string[] = [CONTROL_RUNTIME, 'io.containerd.virtc.v2'];

/**
 * The binary containerd runs for a runtime name, by its rule: the last two dot-separated parts
 * name it, `io.containerd.runc.v2` → `containerd-shim-runc-v2`.
 */
export function shimBinaryName(runtime: string): string {
  const parts = runtime.split('.');
  const [name, version] = parts.slice(-2);
  if (parts.length < 3 || !name || !version || !/^[a-z0-9_-]+$/i.test(name) || !/^v\d+$/.test(version)) {
    throw new Error(`runtime must be a containerd runtime name like ${CONTROL_RUNTIME}, not ${JSON.stringify(runtime)}`);
  }
  return `containerd-shim-${name}-${version}`;
}

/** A comma-separated runtime list (VC_BENCH_CONTAINERD_RUNTIMES), checked; the control first. */
export function parseRuntimeList(text: string): string[] {
  const list = [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
  if (list.length === 0) throw new Error(`runtime list is empty: ${JSON.stringify(text)}`);
  for (const r of list) shimBinaryName(r);
  return [...list.filter((r) => r === CONTROL_RUNTIME), ...list.filter((r) => r !== CONTROL_RUNTIME)];
}

export interface RuntimeMeasurement {
  runtime: string;
  /** The shim binary containerd looks up on its PATH for this runtime. */
  shim: string;
  /** Why it was not measured (its shim binary is not on PATH, …). */
  skipped?: string;
  /** Spawning `ctr run --rm … echo first` → the first byte on ctr's stdout, ms. */
  firstOutputMs: Summary | null;
  samplesMs: number[];
  /** Sum of VmRSS of the shim's processes while one `sleep` task runs, MiB. */
  shimRssMiB: number | null;
  /**
   * Sum of PSS (smaps_rollup) of the same processes, MiB: their private memory plus their share of
   * pages mapped by others too (the Node or Go binary's text shared between shims).
   */
  shimPssMiB?: number | null;
  shimProcesses: number;
  /**
   * Sum of VmRSS of the rest of what runs the `sleep` task: the shims' descendants and the other
   * processes in containerd's mount namespace (runc: the task itself; virtc: the VMM, with the
   * guest RAM it touched), MiB.
   */
  taskRssMiB: number | null;
  taskProcesses: number;
  failures: string[];
}

export interface ContainerdRatio {
  /** median first output of this runtime ÷ the control's: < 1 is faster than runc. */
  firstOutput: number | null;
  /** shim RSS of this runtime ÷ the control's: < 1 is smaller than runc's shim. */
  shimRss: number | null;
}

export interface ContainerdSection {
  skipped?: string;
  error?: string;
  where: Where | null;
  runs: number;
  containerdVersion: string | null;
  image: string;
  command: string[];
  control: string;
  runtimes: Record<string, RuntimeMeasurement>;
  /** Per measured runtime other than the control. */
  ratios: Record<string, ContainerdRatio>;
  notes: string[];
}

export function skippedContainerd(why: { skipped: string } | { error: string }, where: Where | null = null): ContainerdSection {
  return { ...why, where, runs: 0, containerdVersion: null, image: '', command: [], control: CONTROL_RUNTIME, runtimes: {}, ratios: {}, notes: [] };
}

/** Issue 14's target for one pod's shim. */
export const SHIM_RSS_TARGET_MIB = 30;

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a !== null && a !== undefined && b !== null && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? round(a / b, 3) : null;

/** Each measured runtime against the control (null where either side has no figure). */
export function containerdRatios(runtimes: Record<string, RuntimeMeasurement>, control = CONTROL_RUNTIME): Record<string, ContainerdRatio> {
  const base = runtimes[control];
  const out: Record<string, ContainerdRatio> = {};
  for (const [name, m] of Object.entries(runtimes)) {
    if (name === control || m.skipped) continue;
    out[name] = {
      firstOutput: ratio(m.firstOutputMs?.median, base?.firstOutputMs?.median),
      shimRss: ratio(m.shimRssMiB, base?.shimRssMiB),
    };
  }
  return out;
}

export function renderContainerdMarkdown(s: ContainerdSection, where: string): string[] {
  const L: string[] = ['## containerd: ctr run → first output, shim memory', '', where, ''];
  if (s.skipped || s.error) return [...L, s.skipped ? `Skipped: ${s.skipped}` : `Failed: ${s.error}`, ''];
  L.push(`containerd ${s.containerdVersion ?? '?'} (a private instance, test/helpers/containerd.ts); image \`${s.image}\`; ` +
    `\`ctr run --rm --runtime R IMG ID ${s.command.join(' ')}\` ${s.runs} times per runtime, interleaved; shim RSS while one \`sleep\` task runs; "rest of the task": the shims' descendants and the other processes in containerd's mount namespace (runc: the task; a VM runtime: its VMM, guest RAM included).`, '');
  L.push('| runtime | shim | first output, median ms | p95 ms | shim RSS MiB (processes) | shim PSS MiB | rest of the task, RSS MiB (processes) | failures |', '|---|---|---|---|---|---|---|---|');
  for (const m of Object.values(s.runtimes)) {
    if (m.skipped) {
      L.push(`| ${m.runtime} | ${m.shim} | skipped: ${escapeMd(m.skipped)} | | | | | |`);
      continue;
    }
    const f = m.firstOutputMs;
    L.push(`| ${m.runtime} | ${m.shim} | ${fmt(f?.median)} | ${fmt(f?.p95)} | ${fmt(m.shimRssMiB)} (${m.shimProcesses}) | ${fmt(m.shimPssMiB ?? null)} | ${fmt(m.taskRssMiB)} (${m.taskProcesses}) | ${m.failures.length} |`);
  }
  const ratios = Object.entries(s.ratios);
  if (ratios.length) {
    L.push('');
    for (const [name, r] of ratios) L.push(`${name} ÷ ${s.control}: first output **${fmt(r.firstOutput)}×**, shim RSS **${fmt(r.shimRss)}×**.`);
    for (const m of Object.values(s.runtimes)) {
      if (m.runtime === s.control || m.skipped || m.shimRssMiB === null) continue;
      const met = m.shimRssMiB <= SHIM_RSS_TARGET_MIB;
      L.push(`Target: shim RSS ≤ ${SHIM_RSS_TARGET_MIB} MiB per pod — ${m.runtime} ${fmt(m.shimRssMiB)} MiB (PSS ${fmt(m.shimPssMiB ?? null)}): **${met ? 'met' : 'missed'}**.`);
    }
  }
  L.push('');
  for (const m of Object.values(s.runtimes)) for (const f of m.failures.slice(0, 3)) L.push(`- ${m.runtime} failure: ${escapeMd(f)}`);
  for (const n of s.notes) L.push(`- ${escapeMd(n)}`);
  if (s.notes.length || Object.values(s.runtimes).some((m) => m.failures.length)) L.push('');
  return L;
}
