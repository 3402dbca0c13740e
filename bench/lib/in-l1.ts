// Runs one bench script inside the nested-KVM harness's L1 (test/harness/l1.ts) and returns the
// report it prints as its one BENCH-JSON line. Shared by the pod section (bench/pods-inside.js)
// and the host sections (bench/hosts-inside.js) on hosts whose /dev/kvm cannot run them.
import { fileURLToPath } from 'node:url';
import { L1Error, runInL1 } from '../../test/harness/l1.js';
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
}

/**
 * Throws, naming the cause, when L1 fails, the script exits non-zero or it prints no report; with
 * a report already printed, returns it with `failure` instead.
 */
export async function runBenchInL1<T>(opts: BenchInL1Options<T>): Promise<BenchInL1Result<T>> {
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
    if (abort.signal.aborted) {
      // The harness's error carries L1's console: its tail often shows why L1 went quiet (soft lockups, a panic).
      const consoleTail = err instanceof L1Error ? err.console.trim().split('\n').slice(-15).join('\n') : '';
      why = `no output from L1 for ${opts.silenceMs / 60_000} min after "${lastLine}"; aborted${consoleTail ? `\nL1 console, last lines:\n${consoleTail}` : ''}`;
    }
    if (!(err instanceof L1Error)) throw new Error(why);
    const elapsed = Date.now() - t0;
    return { ...salvage(err.output, why), bootMs: elapsed, totalMs: elapsed };
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
