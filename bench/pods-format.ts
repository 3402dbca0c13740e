// The pure parts of bench/pods.ts: the command line of bench/pods-inside.ts, the BENCH-JSON line
// it prints and its parser, and the assembly of the measurements into the result's shape.
import type { HypervisorMeasurement, LifecycleStep } from './pod-measure.js';
import { BENCH_JSON_PREFIX, LineSplitter, parseBenchJsonLine } from './lib/bench-json.js';
import { percentile, round } from './lib/stats.js';

export { BENCH_JSON_PREFIX, LineSplitter };

/** The three set-ups compared: built-in VMM and QEMU-KVM (both in L1), QEMU-TCG on the host. */
export type BenchHypervisor = 'builtin' | 'qemuKvm' | 'qemuTcg';
export const BENCH_HYPERVISORS: readonly BenchHypervisor[] = ['builtin', 'qemuKvm', 'qemuTcg'];

export const NESTED_WHERE = 'nested L1 (QEMU TCG + kvm_amd)';
export const HOST_WHERE = 'host';

const STEPS: readonly LifecycleStep[] = ['create', 'startToReady', 'enterTrue', 'stop', 'delete', 'total'];

export interface InsideArgs {
  runs: number;
  execs: number;
  bytes: number;
  which: BenchHypervisor[];
}

export type Measured = HypervisorMeasurement | { error: string };

export interface InsideReport {
  version: 1;
  kernel: string;
  nestedL1: boolean;
  args: InsideArgs;
  results: Partial<Record<BenchHypervisor, Measured>>;
}

/** pods-inside's argv: `[--runs N] [--execs N] [--bytes N] hypervisor...`. */
export function parseInsideArgs(argv: readonly string[]): InsideArgs {
  const args: InsideArgs = { runs: 3, execs: 30, bytes: 64 << 20, which: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const flag = /^--(runs|execs|bytes)$/.exec(a);
    if (flag) {
      const raw = argv[++i];
      const v = Number(raw);
      if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(v) || v < 1) {
        throw new Error(`${a}: expected a positive integer, got ${JSON.stringify(raw)}`);
      }
      args[flag[1] as 'runs' | 'execs' | 'bytes'] = v;
    } else if ((BENCH_HYPERVISORS as readonly string[]).includes(a)) {
      if (!args.which.includes(a as BenchHypervisor)) args.which.push(a as BenchHypervisor);
    } else {
      throw new Error(`unknown argument ${JSON.stringify(a)} (expected --runs/--execs/--bytes N or one of ${BENCH_HYPERVISORS.join(', ')})`);
    }
  }
  if (args.which.length === 0) throw new Error(`name at least one of ${BENCH_HYPERVISORS.join(', ')}`);
  return args;
}

export function insideArgv(args: InsideArgs): string[] {
  return ['--runs', String(args.runs), '--execs', String(args.execs), '--bytes', String(args.bytes), ...args.which];
}

/**
 * The report in pods-inside's output (bench/lib/bench-json.ts finds the line); throws, quoting
 * the line, when it is not a version-1 report with a `results` object.
 */
export function parseBenchJson(output: string): InsideReport {
  const r = parseBenchJsonLine(output);
  if (!r.results || typeof r.results !== 'object' || Array.isArray(r.results)) {
    throw new Error(`the ${BENCH_JSON_PREFIX.trim()} line is not a version-1 report: ${JSON.stringify(r).slice(0, 200)}`);
  }
  return r as unknown as InsideReport;
}

export interface Spread {
  p50: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
  n: number;
}

/**
 * p50, p95, p99 (nearest rank, as everywhere in the bench: each is a measured sample), min, max
 * and the count of `values`, rounded to hundredths.
 */
export function spread(values: readonly number[]): Spread {
  const q = (p: number) => round(percentile(values, p), 2);
  const finite = values.filter((v) => Number.isFinite(v));
  return {
    p50: q(50), p95: q(95), p99: q(99),
    min: finite.length ? round(Math.min(...finite), 2) : NaN,
    max: finite.length ? round(Math.max(...finite), 2) : NaN,
    n: finite.length,
  };
}

type Err = { error: string };
const isErr = (v: unknown): v is Err => typeof v === 'object' && v !== null && 'error' in v;

/** One hypervisor's lifecycle entry: runs, where, p50/p95 per step, the samples; or { error }. */
export function lifecycleEntry(m: Measured | undefined, where: string): Record<string, unknown> {
  if (m === undefined) return { error: 'not measured' };
  if (isErr(m)) return { error: m.error };
  if (isErr(m.lifecycleMs)) return { error: m.lifecycleMs.error };
  const samples = m.lifecycleMs;
  const stepsMs = Object.fromEntries(STEPS.map((s) => [s, { p50: round(percentile(samples[s], 50), 2), p95: round(percentile(samples[s], 95), 2) }]));
  return {
    runs: samples.total.length,
    where,
    hypervisor: m.hypervisor,
    accel: m.accel,
    stepsMs,
    samplesMs: samples,
    ...(m.lifecycleError ? { incomplete: m.lifecycleError } : {}),
  };
}

/** builtin ÷ qemuKvm of the p50s (below 1: the built-in VMM is faster), or { error }. */
export function builtinVsQemuKvm(builtin: Record<string, unknown>, qemuKvm: Record<string, unknown>): Record<string, unknown> {
  if (isErr(builtin) || isErr(qemuKvm)) return { error: `needs both: builtin ${isErr(builtin) ? 'failed' : 'ok'}, qemuKvm ${isErr(qemuKvm) ? 'failed' : 'ok'}` };
  const p50 = (e: Record<string, unknown>, step: LifecycleStep) => (e.stepsMs as Record<LifecycleStep, { p50: number }>)[step].p50;
  return {
    startToReadyRatio: round(p50(builtin, 'startToReady') / p50(qemuKvm, 'startToReady'), 3),
    totalRatio: round(p50(builtin, 'total') / p50(qemuKvm, 'total'), 3),
  };
}

/** The agent section: one object per figure, keyed by hypervisor; a failed part is { error }. */
export function agentSection(results: Partial<Record<BenchHypervisor, Measured>>): Record<string, unknown> {
  const pick = (f: (a: Exclude<HypervisorMeasurement['agent'], Err>) => unknown) =>
    Object.fromEntries(BENCH_HYPERVISORS.map((h) => {
      const m = results[h];
      if (m === undefined) return [h, { error: 'not measured' }];
      if (isErr(m)) return [h, { error: m.error }];
      if (isErr(m.agent)) return [h, { error: m.agent.error }];
      return [h, f(m.agent)];
    }));
  return {
    execRoundTripP50Ms: pick((a) => a.execRoundTripMs.p50),
    execRoundTripP99Ms: pick((a) => a.execRoundTripMs.p99),
    stdoutMBps: pick((a) => a.stdoutMBps),
    stdinMBps: pick((a) => a.stdinMBps),
    execRoundTripMs: pick((a) => a.execRoundTripMs),
    stdoutSamplesMBps: pick((a) => a.stdoutSamplesMBps ?? [a.stdoutMBps]),
    stdinSamplesMBps: pick((a) => a.stdinSamplesMBps ?? [a.stdinMBps]),
    execBreakdown: pick((a) => a.execBreakdown ?? { error: 'not measured' }),
    bytes: pick((a) => ({ stdout: a.stdoutBytes, stdin: a.stdinBytes })),
    channel: pick((a) => a.channel),
  };
}
