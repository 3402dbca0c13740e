// `npm run bench` (node dist/bench/run.js): measures the built-in VMM and QEMU side by side in one
// run and writes bench/results/latest.{json,md,svg} plus a dated copy of the JSON.
//
//   node dist/bench/run.js [--full] [--only vmm,memory,density,pods,templates,network,containerd] [--out DIR]
//
// Quick mode (the default) stays within a few minutes for these sections; --full takes more runs,
// QEMU × 100 for memory and up to 2500 VMs at once. The host sections (vmm, memory, density) run
// here when this host runs the test guests, else in one boot of the nested harness's L1
// (bench/host-sections.ts); bench/pods.ts (pod lifecycle and agent I/O, in a nested-KVM VM) is
// loaded if present; bench/network.ts (TCP throughput and round trips between pods and the bench,
// in a network namespace of its own, in a nested-KVM VM where this host has no real KVM). Benchmarks
// are not tests: nothing here is in npm test. bench/containerd.ts (ctr run → first output and shim
// memory, our containerd shim beside runc's) runs only when selected: `--only containerd`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../src/native.js';
import { errorText, hostSections, runSection, skippedDensity, skippedMemory, skippedVmm } from './host-sections.js';
import { HOST_SECTIONS, type HostSection } from './hosts-format.js';
import { hostInfo } from './lib/guests.js';
import { killTracked, killTrackedSync } from './lib/proc.js';
import { containerdBenchmarks } from './containerd.js';
import { parseRuntimeList, skippedContainerd } from './containerd-format.js';
import { networkBenchmarks } from './network.js';
import { skippedNetwork } from './network-format.js';
import { templateBenchmarks } from './templates.js';
import { skippedTemplates, type TemplatesSection } from './templates-format.js';
import { renderMarkdown, renderSvg, resultPanels, resultStamp } from './lib/report.js';
import type { BenchResults, L1Info } from './lib/results.js';
import { computeTargets, type TargetId, type TargetResult } from './lib/targets.js';

export const SECTIONS = ['vmm', 'memory', 'density', 'pods', 'templates', 'network', 'containerd'] as const;
export type Section = (typeof SECTIONS)[number];
/**
 * Sections a run without --only leaves out: containerd compares our shim with runc's, and is
 * only worth its time once bin/containerd-shim-virtc-v2 exists.
 */
export const OPT_IN_SECTIONS: readonly Section[] = ['containerd'];

/** Whether a run with `--only` list `only` (null: none given) runs section `s`. */
export function sectionWanted(only: readonly Section[] | null, s: Section): boolean {
  return only === null ? !OPT_IN_SECTIONS.includes(s) : only.includes(s);
}

export interface RunArgs {
  full: boolean;
  only: Section[] | null;
  outDir: string;
}

export function parseArgs(argv: string[], defaultOut: string): RunArgs {
  const args: RunArgs = { full: false, only: null, outDir: defaultOut };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--full') args.full = true;
    else if (a === '--quick') args.full = false;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Error(`--only needs a value: a comma-separated list of ${SECTIONS.join(', ')}`);
      const list = v.split(',').map((s) => s.trim()).filter(Boolean);
      for (const s of list) if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section "${s}" (sections: ${SECTIONS.join(', ')})`);
      args.only = [...new Set([...(args.only ?? []), ...(list as Section[])])];
    } else if (a === '--out') {
      const v = argv[++i];
      if (!v) throw new Error('--out needs a directory');
      args.outDir = v;
    } else if (a === '-h' || a === '--help') {
      throw new Error(`usage: node dist/bench/run.js [--full] [--only ${SECTIONS.join(',')}] [--out DIR]`);
    } else throw new Error(`unknown argument "${a}" (usage: [--full] [--only SECTIONS] [--out DIR])`);
  }
  return args;
}

/** The contract with bench/pods.ts (written separately). */
interface PodBenchmarks {
  podBenchmarks(opts: { full: boolean; onProgress: (msg: string) => void }): Promise<{
    lifecycle: Record<string, unknown>;
    agent: Record<string, unknown>;
    notes: string[];
  }>;
}

function gitHead(): string | null {
  const r = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: packageRoot, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2), join(packageRoot, 'bench', 'results'));
  const want = (s: Section) => sectionWanted(args.only, s);
  const started = new Date();
  const t0 = Date.now();
  const progress = (msg: string) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  const onSignal = (sig: NodeJS.Signals) => {
    killTrackedSync();
    process.stderr.write(`bench: ${sig}: killed every process it had started\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const errors: BenchResults['errors'] = [];
  const notes: string[] = [];
  const mode = args.full ? 'full' : 'quick';
  progress(`mode ${mode}${args.only ? `, only ${args.only.join(',')}` : ''}`);
  const host = hostInfo();
  progress(`host: ${host.cpuModel}, ${host.cores} cores, Linux ${host.kernel}, /dev/kvm ${host.kvmFlavor}, ${host.qemuVersion ?? 'no QEMU'}`);
  const opts = { full: args.full, onProgress: progress };
  const notSelected = { skipped: 'not selected (--only)' };

  let vmmStart = skippedVmm(notSelected, null);
  let memory = skippedMemory(notSelected, null);
  let density = skippedDensity(notSelected, null);
  let l1: L1Info | null = null;
  let lifecycle: BenchResults['lifecycle'] = { ...notSelected, where: null };
  let agent: BenchResults['agent'] = { ...notSelected, where: null, execRoundTripP50Ms: null };
  let podNotes: string[] = [];
  let network = skippedNetwork(notSelected, null);
  let templates: TemplatesSection = skippedTemplates(notSelected.skipped);
  let containerd = skippedContainerd(args.only === null ? { skipped: 'not in the default run (--only containerd runs it)' } : notSelected);

  const section = <T>(name: string, run: () => Promise<T>, onError: (msg: string) => T) => runSection(name, run, onError, { errors, progress });

  const hostWanted = HOST_SECTIONS.filter((s: HostSection) => want(s));
  if (hostWanted.length) ({ vmmStart, memory, density, l1 } = await hostSections(hostWanted, args.full, { errors, progress }));

  if (want('pods')) {
    const spec = './pods.js';
    let mod: PodBenchmarks | null = null;
    try {
      mod = (await import(spec)) as PodBenchmarks;
    } catch (err) {
      const code = (err as { code?: string }).code;
      const missing = code === 'ERR_MODULE_NOT_FOUND' && /pods\.js/.test(errorText(err));
      const why = missing ? 'bench/pods.ts not present' : `bench/pods.ts could not be loaded: ${errorText(err)}`;
      if (!missing) errors.push({ section: 'pods', message: why });
      lifecycle = { skipped: why, where: null };
      agent = { skipped: why, where: null, execRoundTripP50Ms: null };
      progress(`pods: ${why}`);
    }
    if (mod && typeof mod.podBenchmarks !== 'function') {
      const why = 'bench/pods.ts has no podBenchmarks export';
      errors.push({ section: 'pods', message: why });
      lifecycle = { skipped: why, where: null };
      agent = { skipped: why, where: null, execRoundTripP50Ms: null };
      mod = null;
    }
    if (mod) {
      const pods = mod;
      const r = await section('pods', async () => pods.podBenchmarks(opts), (m) => ({ lifecycle: { error: m }, agent: { error: m }, notes: [] as string[] }));
      // pods.ts says where its headline pair ran; a section that failed before saying so ran nowhere known.
      const whereOf = (o: Record<string, unknown> | undefined) => (o?.where === 'l0' || o?.where === 'l1' ? o.where : null);
      lifecycle = { ...(r.lifecycle ?? {}), where: whereOf(r.lifecycle) };
      const rt = (r.agent ?? {})['execRoundTripP50Ms'];
      agent = { ...(r.agent ?? {}), where: whereOf(r.agent), execRoundTripP50Ms: rt && typeof rt === 'object' ? (rt as Record<string, number>) : null };
      podNotes = Array.isArray(r.notes) ? r.notes.map(String) : [];
    }
  }

  if (want('templates')) {
    templates = await section('templates', () => templateBenchmarks(opts), (m) => ({ ...skippedTemplates(null), error: m }));
  }

  if (want('network')) {
    network = await section('network', () => networkBenchmarks(opts), (m) => skippedNetwork({ error: m }, null));
  }

  if (want('containerd')) {
    // By hand: VC_BENCH_CONTAINERD_RUNTIMES=io.containerd.runc.v2,… chooses the runtimes compared,
    // VC_BENCH_CONTAINERD_HYPERVISOR=qemu the hypervisor of our shim's pods (its pod annotation).
    const list = process.env.VC_BENCH_CONTAINERD_RUNTIMES;
    const hv = process.env.VC_BENCH_CONTAINERD_HYPERVISOR;
    const runArgs = hv ? { 'io.containerd.virtc.v2': ['--annotation', `io.virtcontainers.pod.hypervisor=${hv}`] } : undefined;
    containerd = await section('containerd', () => containerdBenchmarks({ ...opts, runtimes: list ? parseRuntimeList(list) : undefined, runArgs }),
      (m) => skippedContainerd({ error: m }));
  }

  const results: BenchResults = {
    schema: 5,
    date: started.toISOString(),
    mode,
    only: args.only,
    durationSeconds: Math.round((Date.now() - t0) / 100) / 10,
    gitHead: gitHead(),
    host,
    l1,
    vmmStart,
    memory,
    density,
    lifecycle,
    agent,
    podNotes,
    network,
    containerd,
    templates,
    targets: {} as Record<TargetId, TargetResult>,
    errors,
    notes,
  };
  results.targets = computeTargets(results);
  const left = await killTracked();
  if (left) errors.push({ section: 'cleanup', message: `${left} benchmark processes survived SIGTERM and SIGKILL` });

  mkdirSync(args.outDir, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(join(args.outDir, 'latest.json'), json);
  writeFileSync(join(args.outDir, `${resultStamp(started)}.json`), json);
  writeFileSync(join(args.outDir, 'latest.md'), renderMarkdown(results));
  const inL1 = [l1 ? 'vmm, memory, density' : null, network.where === 'l1' ? 'network' : null].filter((x) => x !== null);
  const l1Caption = inL1.length ? `; ${inL1.join(', ')} in L1 (nested KVM under TCG: compare ratios only)` : '';
  writeFileSync(join(args.outDir, 'latest.svg'), renderSvg(resultPanels(results), `virtcontainers bench, ${mode} mode, ${results.date}, ${host.cpuModel} × ${host.cores}, /dev/kvm ${host.kvmFlavor}${l1Caption}`));
  progress(`wrote ${join(args.outDir, 'latest.{json,md,svg}')} and ${resultStamp(started)}.json`);
  for (const [name, t] of Object.entries(results.targets))
    progress(`target ${name}: ${t.measured ?? '—'} ${t.unit} (${t.op} ${t.target}, ${t.judgedBy}) ${t.met === true ? 'met' : t.met === false ? `MISSED by ${t.missedBy} ${t.unit}` : t.measured === null ? 'not measured' : 'undecided'}${t.note && t.measured === null ? `: ${t.note}` : ''}`);
  if (errors.length) progress(`${errors.length} section error(s); see latest.json "errors"`);
}

// Run only as the entry point (the unit tests import parseArgs).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch(async (err) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    await killTracked();
    process.exit(1);
  });
}
