// The measurements behind bench/pods.ts, through the public API: the pod lifecycle (create → start
// until the agent answers → enter `true` → stop → delete) and agent I/O on a running pod (exec
// round trips, stdout and stdin throughput). Used on the host (QEMU with TCG) and inside the
// nested-KVM harness's L1 (built-in VMM, QEMU with KVM) by bench/pods-inside.ts.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { nativeExecutable } from '../src/native.js';
import { createPod, deletePod, enterPod, podStatus, startPod, stopPod } from '../src/index.js';
import { teardownRoot } from '../test/helpers/pods.js';
import { round } from './lib/stats.js';
import { spread, type BenchHypervisor, type Spread } from './pods-format.js';
import { execBreakdown, type ExecBreakdown } from './exec-breakdown.js';
import { median } from './lib/stats.js';

const API_HYPERVISOR: Record<BenchHypervisor, 'kvm' | 'qemu'> = { builtin: 'kvm', qemuKvm: 'qemu', qemuTcg: 'qemu' };
const EXPECTED_ACCEL: Record<BenchHypervisor, string | undefined> = { builtin: undefined, qemuKvm: 'kvm', qemuTcg: 'tcg' };
/** The guest side of the agent channel (DESIGN §4: no /dev/vhost-vsock on these machines). */
export const AGENT_CHANNEL: Record<BenchHypervisor, string> = {
  builtin: 'hybrid vsock (virtio-vsock, Unix socket on the host)',
  qemuKvm: 'virtio-serial (Unix-socket chardev)',
  qemuTcg: 'virtio-serial (Unix-socket chardev)',
};

export const LIFECYCLE_STEPS = ['create', 'startToReady', 'enterTrue', 'stop', 'delete', 'total'] as const;
export type LifecycleStep = (typeof LIFECYCLE_STEPS)[number];

export interface MeasureOptions {
  which: BenchHypervisor;
  /** Lifecycle runs (each boots a pod). */
  runs: number;
  /** `true` execs timed for the round trip (after two untimed warm-ups). */
  execs: number;
  /** Bytes streamed each way for the throughput figures. */
  ioBytes: number;
  memoryMiB?: number;
  /** Per-step limit; a pod boot under nested TCG takes tens of seconds. */
  stepTimeoutMs?: number;
  onProgress?: (msg: string) => void;
}

export interface AgentIo {
  channel: string;
  /** Over every timed exec of every run. */
  execRoundTripMs: Spread;
  /** Each transfer's bytes; stdoutMs/stdinMs and the MB/s are the medians over the runs. */
  stdoutBytes: number;
  stdoutMs: number;
  stdoutMBps: number;
  stdinBytes: number;
  stdinMs: number;
  stdinMBps: number;
  /** One per lifecycle run, in run order (the hypervisors' runs alternate). */
  stdoutSamplesMBps?: number[];
  stdinSamplesMBps?: number[];
  /** Where an exec round trip's time goes, one per run (bench/exec-breakdown.ts). */
  execBreakdown?: ExecBreakdown[];
}

/** Agent I/O of one run, before the runs are pooled. */
interface AgentIoRun {
  execs: number[];
  stdout: { ms: number; mbps: number };
  stdin: { ms: number; mbps: number };
  breakdown: ExecBreakdown;
}

export interface HypervisorMeasurement {
  which: BenchHypervisor;
  hypervisor: 'kvm' | 'qemu';
  /** What podStatus reported (QEMU: kvm or tcg). */
  accel: string | null;
  /** Per step, one sample per completed run (ms). */
  lifecycleMs: Record<LifecycleStep, number[]> | { error: string };
  /** Runs that failed while others completed (one is let pass, the rounds go on): the samples are the others'. */
  lifecycleError?: string;
  agent: AgentIo | { error: string };
}

const execFileAsync = promisify(execFile);

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${err.message}`;
  }
  return String(err);
}

/**
 * Lifecycle runs on a fresh temporary root, then agent I/O on the first run's pod (after its
 * `enterTrue` step and before its `stop`, outside the timed steps). Never throws: a failure is
 * recorded in the result. Everything under the root is stopped, killed and removed at the end.
 */
export async function measureHypervisor(opts: MeasureOptions): Promise<HypervisorMeasurement> {
  return (await measureInterleaved([opts]))[0]!;
}

/**
 * Several hypervisors side by side: all warm up first, then run 1 of each, run 2 of each, …, so
 * that a change in the host's load (other VMs starting or ending) falls on all of them alike.
 * A hypervisor whose warm-up fails, or a second of whose runs fails, is left out of the later
 * rounds; after one failed run it goes on (in L1 a guest is lost now and then: a triple fault, a
 * reset agent connection — docs/nested-harness.md), and the failure is in its `lifecycleError`.
 */
export async function measureInterleaved(list: readonly MeasureOptions[]): Promise<HypervisorMeasurement[]> {
  const benches = list.map((opts) => new PodBench(opts));
  try {
    for (const b of benches) await b.warmUp();
    const rounds = Math.max(0, ...list.map((o) => o.runs));
    for (let run = 1; run <= rounds; run++) {
      for (const b of benches) if (b.alive && run <= b.opts.runs) await b.run(run);
    }
  } finally {
    for (const b of benches) await b.tearDown();
  }
  return benches.map((b) => b.result);
}

class PodBench {
  readonly result: HypervisorMeasurement;
  alive = false;
  #root: string | undefined;
  readonly #samples = Object.fromEntries(LIFECYCLE_STEPS.map((s) => [s, [] as number[]])) as Record<LifecycleStep, number[]>;
  readonly #hypervisor: 'kvm' | 'qemu';
  readonly #timeoutMs: number;
  readonly #progress: (msg: string) => void;
  /** The agent I/O samples so far; null once one failed (the error is the result). */
  #agentRuns: AgentIoRun[] | null = [];
  /** The runs that failed, each as `run N: why`. */
  readonly #failures: string[] = [];

  constructor(readonly opts: MeasureOptions) {
    this.#hypervisor = API_HYPERVISOR[opts.which];
    this.#timeoutMs = opts.stepTimeoutMs ?? 180_000;
    this.#progress = (msg) => opts.onProgress?.(`${opts.which}: ${msg}`);
    this.result = { which: opts.which, hypervisor: this.#hypervisor, accel: null, lifecycleMs: this.#samples, agent: { error: 'not measured' } };
  }

  #call() {
    return { root: this.#root!, signal: AbortSignal.timeout(this.#timeoutMs) };
  }

  #config(id: string) {
    return { id, hypervisor: this.#hypervisor, memoryMiB: this.opts.memoryMiB ?? 256, vcpus: 1 };
  }

  /**
   * Untimed: the kernel lookup and the initrd (cached by content) are read once, and the VMM's
   * executable and libraries are loaded once (`--version`), so the first timed run does not pay
   * for cold file caches (in L1 they are read over 9p by an emulated machine).
   */
  async warmUp(): Promise<void> {
    try {
      this.#root = await mkdtemp('/tmp/vcb-');
      this.#progress('warm-up (VMM --version, create/delete)');
      const vmm = this.#hypervisor === 'kvm' ? nativeExecutable('vc-vmm') : (process.env.VC_QEMU ?? 'qemu-system-x86_64');
      await execFileAsync(vmm, ['--version'], { timeout: this.#timeoutMs });
      await createPod(this.#config('warm'), this.#call());
      await deletePod('warm', this.#call());
      this.alive = true;
    } catch (err) {
      this.#progress(`warm-up failed: ${errorText(err)}`);
      this.result.lifecycleMs = { error: `warm-up: ${errorText(err)}` };
      this.result.agent = { error: `not measured: warm-up: ${errorText(err)}` };
    }
  }

  /** One timed lifecycle run with its agent I/O; a second failure ends this hypervisor's runs. */
  async run(run: number): Promise<void> {
    const { which, runs } = this.opts;
    const root = this.#root!;
    const id = `run${run}`;
    let created = false;
    try {
      const t: Record<string, number> = {};
      const t0 = performance.now();
      await createPod(this.#config(id), this.#call());
      created = true;
      const t1 = performance.now();
      const status = await startPod(id, { ...this.#call(), bootTimeoutMs: this.#timeoutMs });
      const t2 = performance.now();
      this.result.accel = status.accel;
      const expected = EXPECTED_ACCEL[which];
      if (expected && status.accel !== expected) throw new Error(`expected QEMU with ${expected}, the pod runs with ${status.accel}`);
      await runToExit(id, ['true'], root, this.#timeoutMs);
      const t3 = performance.now();
      t.create = t1 - t0; t.startToReady = t2 - t1; t.enterTrue = t3 - t2;
      this.#progress(`run ${run}/${runs}: create ${ms(t.create)}, start→ready ${ms(t.startToReady)}, enter true ${ms(t.enterTrue)}`);

      // Agent I/O on every run's pod: its figures swing from one moment to the next on a shared
      // host (in L1 most of all), so each hypervisor gets a sample per run, their turns alternating.
      if (this.#agentRuns !== null) {
        const sample = await agentIoRun(id, root, status.pid!, this.opts, this.#timeoutMs, this.#progress);
        if ('error' in sample) {
          // The samples before it stand (the section's notes say how many runs there were).
          if (this.#agentRuns.length === 0) this.result.agent = sample;
          this.#agentRuns = null;
        } else {
          this.#agentRuns.push(sample);
          this.result.agent = pooled(this.#agentRuns, this.opts);
        }
      }

      const t4 = performance.now();
      await stopPod(id, this.#call());
      const t5 = performance.now();
      await deletePod(id, this.#call());
      created = false;
      const t6 = performance.now();
      t.stop = t5 - t4; t.delete = t6 - t5;
      t.total = t.create + t.startToReady + t.enterTrue + t.stop + t.delete;
      for (const step of LIFECYCLE_STEPS) this.#samples[step].push(round(t[step]!, 2));
      this.result.lifecycleMs = this.#samples;
      if (this.#failures.length > 0) this.result.lifecycleError = this.#failures.join('; ');
      this.#progress(`run ${run}/${runs}: stop ${ms(t.stop)}, delete ${ms(t.delete)}, total ${ms(t.total)}`);
    } catch (err) {
      const message = `run ${run}: ${errorText(err)}`;
      this.#failures.push(message);
      this.#progress(this.#failures.length === 1 && run < runs ? `${message} (the rounds go on; a second failure ends them)` : message);
      if (this.#failures.length >= 2) this.alive = false;
      if (this.#samples.total.length === 0) this.result.lifecycleMs = { error: this.#failures.join('; ') };
      else this.result.lifecycleError = this.#failures.join('; ');
      const agent = this.result.agent;
      if ('error' in agent && agent.error === 'not measured') this.result.agent = { error: `not measured: ${message}` };
    } finally {
      if (created) await cleanupPod(id, root);
    }
  }

  /** Stops and deletes whatever is left under the root, kills stray VMMs, removes the root. */
  async tearDown(): Promise<void> {
    if (this.#root === undefined) return;
    await teardownRoot(this.#root).catch(() => {});
    await rm(this.#root, { recursive: true, force: true }).catch(() => {});
    this.#root = undefined;
  }
}

async function cleanupPod(id: string, root: string): Promise<void> {
  const status = await podStatus(id, { root }).catch(() => undefined);
  if (status && (status.state === 'running' || status.state === 'paused')) await stopPod(id, { root, timeoutMs: 2000 }).catch(() => {});
  await deletePod(id, { root }).catch(() => {});
}

async function agentIoRun(id: string, root: string, vmmPid: number, opts: MeasureOptions, timeoutMs: number, progress: (m: string) => void): Promise<AgentIoRun | { error: string }> {
  try {
    progress(`agent I/O: ${opts.execs} exec round trips of \`true\``);
    for (let i = 0; i < 2; i++) await runToExit(id, ['true'], root, timeoutMs); // warm-up, untimed
    const execs: number[] = [];
    for (let i = 0; i < opts.execs; i++) execs.push(await execRoundTrip(id, root, timeoutMs));
    const s = spread(execs);
    progress(`exec round trip p50 ${ms(s.p50)}, p99 ${ms(s.p99)}`);
    const breakdown = await execBreakdown(id, root, vmmPid, Math.max(3, Math.ceil(opts.execs / 2)), timeoutMs);
    progress(`exec steps p50 ${JSON.stringify(breakdown.stepsP50Ms)}, CPU per exec ${JSON.stringify(breakdown.cpuPerExecMs)}`);
    progress(`agent I/O: ${mib(opts.ioBytes)} guest→host (head -c … /dev/zero)`);
    const stdout = await stdoutThroughput(id, root, opts.ioBytes, timeoutMs);
    progress(`stdout ${round(stdout.mbps, 1)} MB/s`);
    progress(`agent I/O: ${mib(opts.ioBytes)} host→guest (wc -c)`);
    const stdin = await stdinThroughput(id, root, opts.ioBytes, timeoutMs);
    progress(`stdin ${round(stdin.mbps, 1)} MB/s`);
    return { execs, stdout, stdin, breakdown };
  } catch (err) {
    progress(`agent I/O failed: ${errorText(err)}`);
    return { error: errorText(err) };
  }
}

/** The runs' agent I/O together: every exec in one spread, the medians of the transfers. */
function pooled(runs: readonly AgentIoRun[], opts: MeasureOptions): AgentIo {
  const mid = (xs: number[]) => round(median(xs), 2);
  return {
    channel: AGENT_CHANNEL[opts.which],
    execRoundTripMs: spread(runs.flatMap((r) => r.execs)),
    stdoutBytes: opts.ioBytes, stdoutMs: mid(runs.map((r) => r.stdout.ms)), stdoutMBps: mid(runs.map((r) => r.stdout.mbps)),
    stdinBytes: opts.ioBytes, stdinMs: mid(runs.map((r) => r.stdin.ms)), stdinMBps: mid(runs.map((r) => r.stdin.mbps)),
    stdoutSamplesMBps: runs.map((r) => round(r.stdout.mbps, 2)),
    stdinSamplesMBps: runs.map((r) => round(r.stdin.mbps, 2)),
    execBreakdown: runs.map((r) => r.breakdown),
  };
}

/** One timed `true` through enterPod (a whole exec round trip), in ms. */
export async function execRoundTrip(id: string, root: string, timeoutMs = 180_000): Promise<number> {
  const t0 = performance.now();
  await runToExit(id, ['true'], root, timeoutMs);
  return performance.now() - t0;
}

/** A stream's whole text. */
export async function collectOutput(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** Runs argv in the guest with its output discarded; throws unless it exits 0 within timeoutMs. */
async function runToExit(id: string, argv: string[], root: string, timeoutMs: number): Promise<void> {
  const proc = await enterPod(id, argv, { root, signal: AbortSignal.timeout(timeoutMs) });
  proc.stdout.resume();
  proc.stderr.resume();
  const status = await withTimeout(proc.wait(), timeoutMs, `${argv.join(' ')} in pod ${id}`, () => proc.kill('SIGKILL'));
  if (status.exitCode !== 0) throw new Error(`${argv.join(' ')} in pod ${id} ended with ${status.signal ?? `exit code ${status.exitCode}`}`);
}

/** `head -c N /dev/zero` in the guest, read fully on the host: enterPod to the exit status. */
export async function stdoutThroughput(id: string, root: string, bytes: number, timeoutMs: number): Promise<{ ms: number; mbps: number }> {
  const t0 = performance.now();
  const proc = await enterPod(id, ['head', '-c', String(bytes), '/dev/zero'], { root, signal: AbortSignal.timeout(timeoutMs) });
  proc.stderr.resume();
  const read = (async () => {
    let n = 0;
    for await (const chunk of proc.stdout) n += (chunk as Buffer).length;
    return n;
  })();
  const [n, status] = await withTimeout(Promise.all([read, proc.wait()]), timeoutMs, `stdout of head -c ${bytes}`, () => proc.kill('SIGKILL'));
  const elapsed = performance.now() - t0;
  if (status.exitCode !== 0) throw new Error(`head -c ${bytes} /dev/zero ended with ${status.signal ?? `exit code ${status.exitCode}`}`);
  if (n !== bytes) throw new Error(`stdout: read ${n} bytes, expected ${bytes}`);
  return { ms: elapsed, mbps: bytes / 1e6 / (elapsed / 1000) };
}

/** `bytes` zeros written to `wc -c` in the guest (1 MiB writes, honouring backpressure), then EOF; enterPod to its count and exit. */
export async function stdinThroughput(id: string, root: string, bytes: number, timeoutMs: number): Promise<{ ms: number; mbps: number }> {
  const chunk = Buffer.alloc(1 << 20);
  const t0 = performance.now();
  const proc = await enterPod(id, ['wc', '-c'], { root, signal: AbortSignal.timeout(timeoutMs) });
  let text = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (d: string) => { text += d; });
  proc.stderr.resume();
  const write = (async () => {
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      if (!proc.stdin.write(chunk.subarray(0, Math.min(chunk.length, bytes - sent)))) await once(proc.stdin, 'drain');
    }
    proc.stdin.end();
  })();
  const [, status] = await withTimeout(Promise.all([write, proc.wait(), finished(proc.stdout)]), timeoutMs, `stdin of wc -c`, () => proc.kill('SIGKILL'));
  const elapsed = performance.now() - t0;
  if (status.exitCode !== 0) throw new Error(`wc -c ended with ${status.signal ?? `exit code ${status.exitCode}`}`);
  const counted = Number(text.trim());
  if (counted !== bytes) throw new Error(`stdin: wc -c counted ${JSON.stringify(text.trim())}, expected ${bytes}`);
  return { ms: elapsed, mbps: bytes / 1e6 / (elapsed / 1000) };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string, onTimeout: () => Promise<unknown> | void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void Promise.resolve().then(onTimeout).catch(() => {});
      reject(new Error(`${what}: no result within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function ms(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`;
}

function mib(bytes: number): string {
  return `${round(bytes / (1 << 20), 1)} MiB`;
}
