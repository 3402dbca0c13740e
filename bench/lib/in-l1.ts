// Runs one bench script inside the nested-KVM harness's L1 (test/harness/l1.ts) and returns the
// report it prints as its one BENCH-JSON line. Shared by the pod section (bench/pods-inside.js)
// and the host sections (bench/hosts-inside.js) on hosts whose /dev/kvm cannot run them.
import { fileURLToPath } from 'node:url';
import { L1Error, l1KernelPanic, runInL1 } from '../../test/harness/l1.js';
import { BENCH_JSON_PREFIX, LineSplitter } from './bench-json.js';
import { native } from '../../src/native.js';

const PROJECT = fileURLToPath(new URL('../../..', import.meta.url));

export interface BenchInL1Options<T> {
  /** The compiled script (an absolute path under dist/bench) and its arguments. */
  script: string;
  argv: string[];
  /**
   * A command the script runs under, e.g. `unshare --net -- sh -c 'ip link set lo up && exec "$0" "$@"'`
   * (node, the script and its argv are appended).
   */
  wrapper?: string[];
  /** From QEMU's start to the script's end. */
  timeoutMs: number;
  /**
   * L1 is given up after this long without a line of output: the inside scripts report every
   * step, so a silent L1 is a stuck one, and waiting for the whole timeout would waste minutes.
   */
  silenceMs: number;
  /** L1's memory (default: the harness's). */
  memoryMiB?: number;
  /** Finds the report in the script's output (e.g. bench-json.ts's parseBenchJsonLine, checked further). */
  parse: (output: string) => T;
  /** Progress lines from L1 (prefixed `[L1] `) and the harness's own steps. */
  onProgress: (msg: string) => void;
  /** Whether a run whose L1 stopped (silent, kernel panic) is run once more from the start; default true. */
  rerunIfStopped?: boolean;
}

export interface BenchInL1Result<T> {
  report: T;
  /**
   * Set when L1 or the script failed after printing a report: why. The report is then the last
   * one printed before the failure (scripts that report progressively print one per step).
   */
  failure?: string;
  bootMs: number;
  totalMs: number;
  /**
   * Set when an earlier L1 stopped under the script (silent, or its kernel panicked) and the script
   * ran once more in a fresh L1, whose result this is: why that L1 stopped.
   */
  rerunAfter?: string;
}

/** Why an L1 run stopped on its own (silent, or its kernel panicked); absent for any other end. */
type Stopped = { l1Stopped?: string };

/**
 * Runs `once`; if its L1 stopped (the result or the error carries `l1Stopped`), runs it once more
 * and returns that run's result with `rerunAfter`. Any other failure is returned or thrown as is.
 */
export async function withRerunIfL1Stopped<R extends object>(once: () => Promise<R & Stopped>, onProgress: (msg: string) => void): Promise<R & { rerunAfter?: string }> {
  let stopped: string | undefined;
  try {
    const first = await once();
    if (!first.l1Stopped) return first;
    stopped = first.l1Stopped;
  } catch (err) {
    stopped = (err as Stopped).l1Stopped;
    if (!stopped) throw err;
  }
  onProgress(`L1 stopped (${stopped}); running the script once more in a fresh L1`);
  const second = await once();
  return { ...second, rerunAfter: stopped };
}

/**
 * Throws, naming the cause, when L1 fails, the script exits non-zero or it prints no report; with
 * a report already printed, returns it with `failure` instead.
 */
export async function runBenchInL1<T>(opts: BenchInL1Options<T>): Promise<BenchInL1Result<T>> {
  if (opts.rerunIfStopped === false) return runBenchInL1Once(opts);
  return withRerunIfL1Stopped(() => runBenchInL1Once(opts), opts.onProgress);
}

async function runBenchInL1Once<T>(opts: BenchInL1Options<T>): Promise<BenchInL1Result<T> & Stopped> {
  const abort = new AbortController();
  let watchdog: NodeJS.Timeout | undefined;
  const feedWatchdog = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => abort.abort(), opts.silenceMs);
  };
  const splitter = new LineSplitter();
  let lastLine = '';
  const forward = (line: string) => {
    if (line.startsWith(BENCH_JSON_PREFIX) || !line.trim()) return;
    lastLine = line;
    opts.onProgress(`[L1] ${line}`);
  };
  /** The last report printed before a failure, or the failure itself when there is none. */
  const salvage = (output: string, why: string): { report: T; failure: string } => {
    let report: T;
    try {
      report = opts.parse(output);
    } catch {
      throw new Error(why);
    }
    return { report, failure: why };
  };
  const t0 = Date.now();
  try {
    feedWatchdog();
    const r = await runInL1({
      command: [...(opts.wrapper ?? []), process.execPath, opts.script, ...opts.argv],
      cwd: PROJECT,
      env: { NO_COLOR: '1' },
      timeoutMs: opts.timeoutMs,
      ...(opts.memoryMiB ? { memoryMiB: opts.memoryMiB } : {}),
      signal: abort.signal,
      onOutput: (chunk) => { feedWatchdog(); splitter.feed(chunk).forEach(forward); },
      onProgress: (msg) => opts.onProgress(msg),
    });
    splitter.end().forEach(forward);
    if (r.exitCode !== 0) {
      const why = `${opts.script} exited with code ${r.exitCode} in L1: ${r.output.trim().split('\n').slice(-5).join(' / ')}`;
      return { ...salvage(r.output, why), bootMs: r.bootMs, totalMs: r.totalMs };
    }
    return { report: opts.parse(r.output), bootMs: r.bootMs, totalMs: r.totalMs };
  } catch (err) {
    let why = err instanceof Error ? err.message : String(err);
    let l1Stopped: string | undefined;
    if (abort.signal.aborted) {
      // The harness's error carries L1's console: its tail often shows why L1 went quiet (soft lockups, a panic).
      const consoleTail = err instanceof L1Error ? err.console.trim().split('\n').slice(-15).join('\n') : '';
      why = `no output from L1 for ${opts.silenceMs / 60_000} min after "${lastLine}"; aborted${consoleTail ? `\nL1 console, last lines:\n${consoleTail}` : ''}`;
      l1Stopped = `no output for ${opts.silenceMs / 60_000} min after "${lastLine}"`;
    } else {
      const panic = l1KernelPanic(err);
      if (panic !== null) l1Stopped = `L1's kernel panicked: ${panic}`;
    }
    if (!(err instanceof L1Error)) throw new Error(why);
    const elapsed = Date.now() - t0;
    let salvaged: { report: T; failure: string };
    try {
      salvaged = salvage(err.output, why);
    } catch (e) {
      throw Object.assign(e as Error, { l1Stopped });
    }
    return { ...salvaged, bootMs: elapsed, totalMs: elapsed, ...(l1Stopped ? { l1Stopped } : {}) };
  } finally {
    clearTimeout(watchdog);
  }
}

/** This host's KVM as the pod and network sections need it (stock guests), or why not: they then run in L1. */
export function safeProbe(): { stockGuests: boolean; reason?: string } {
  try {
    const p = native().kvmProbe();
    return { stockGuests: p.stockGuests, reason: p.reason ?? undefined };
  } catch (err) {
    return { stockGuests: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
