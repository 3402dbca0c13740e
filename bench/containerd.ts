// The containerd section of the bench: our shim (io.containerd.virtc.v2) beside Debian's runc shim
// (io.containerd.runc.v2) under one private containerd (test/helpers/containerd.ts), side by side
// in one run: spawning `ctr run --rm … echo first` → the first byte on ctr's stdout, and the RSS
// of the runtime's shim processes while a `sleep` task runs. A runtime whose shim binary is not on
// containerd's PATH (bin/ of the package, then this process's PATH) is skipped, saying so.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { packageRoot } from '../src/native.js';
import { containerdProblem, startContainerd, type Containerd } from '../test/helpers/containerd.js';
import { importBusybox } from '../test/helpers/containerd-image.js';
import { liveProcesses } from '../test/helpers/containerd-host.js';
import {
  containerdRatios, CONTROL_RUNTIME, DEFAULT_RUNTIMES, shimBinaryName, skippedContainerd, type ContainerdSection, type RuntimeMeasurement,
} from './containerd-format.js';
import { track, untrack } from './lib/proc.js';
import { round, summarize } from './lib/stats.js';

const COMMAND = ['echo', 'first'];
const RUN_TIMEOUT_MS = 60_000;

export interface ContainerdBenchOptions {
  full: boolean;
  onProgress: (msg: string) => void;
  /** Runtime names to measure; the control (runc) first. Default: runc and virtc. */
  runtimes?: readonly string[];
  /** Timed runs per runtime (default 10, 30 with full). */
  runs?: number;
  /** Extra `ctr run` options per runtime name (e.g. an annotation choosing the hypervisor). */
  runArgs?: Readonly<Record<string, readonly string[]>>;
}

/** Where containerd will find shims: the package's bin/ first, then this process's PATH. */
export function shimSearchPath(): string[] {
  return [join(packageRoot, 'bin'), ...(process.env.PATH ?? '').split(':').filter(Boolean)];
}

function findOnPath(binary: string, dirs: string[]): string | null {
  for (const d of dirs) if (existsSync(join(d, binary))) return join(d, binary);
  return null;
}

/** One `ctr run --rm`: ms from spawn to ctr's first stdout byte; throws with what it printed on failure. */
function firstOutput(rig: Containerd, m: RuntimeMeasurement, extra: readonly string[], image: string, id: string): Promise<number> {
  const runtime = m.runtime;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = rig.spawnCtr(['run', '--rm', '--runtime', runtime, ...extra, image, id, ...COMMAND]);
    track(child.pid);
    let first: number | null = null;
    let stdout = '', stderr = '';
    child.stdin!.end();
    child.stdout!.on('data', (d) => { first ??= performance.now(); stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      untrack(child.pid);
      if (code === 0 && stdout === `${COMMAND[1]}\n` && first !== null) resolve(first - t0);
      else reject(new Error(`ctr run --runtime ${runtime} ${id}: exit ${code}, stdout ${JSON.stringify(stdout.slice(0, 200))}, stderr ${JSON.stringify(stderr.trim().slice(-300))}`));
    });
  });
}

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function vmRssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/**
 * The shim's processes for `rig` (argv0 — or, for a script run by an interpreter, the script — is the
 * shim binary, and it names our containerd's address), and the rest of what runs the task: the
 * shims' descendants (runc's task) and the other processes in containerd's mount namespace (a VMM
 * the shim started detached, so that it outlives the shim).
 */
export function shimMemory(rig: Containerd, shim: string): { shimPids: number[]; shimKiB: number; shimPssKiB: number; taskPids: number[]; taskKiB: number } {
  const procs = liveProcesses();
  // argv0, or for a script the interpreter runs, its first argument that is not an option.
  const script = (argv: string[]) => argv.slice(1).find((a) => !a.startsWith('-')) ?? '';
  const isShim = (argv: string[]) => (basename(argv[0] ?? '') === shim || basename(script(argv)) === shim) && argv.includes(rig.address);
  const shimPids = procs.filter((p) => isShim(p.argv)).map((p) => p.pid);
  const shims = new Set(shimPids);
  const parents = new Map(procs.map((p) => [p.pid, parentOf(p.pid)]));
  const descends = (pid: number) => {
    for (let up = parents.get(pid), hops = 0; up && hops < 64; up = parents.get(up), hops++) if (shims.has(up)) return true;
    return false;
  };
  const taskPids = procs.filter((p) => !shims.has(p.pid) && p.pid !== rig.pid && (descends(p.pid) || p.mountNamespace === rig.mountNamespace)).map((p) => p.pid);
  const sum = (pids: number[]) => pids.reduce((a, pid) => a + vmRssKiB(pid), 0);
  return { shimPids, shimKiB: sum(shimPids), shimPssKiB: shimPids.reduce((a, pid) => a + pssKiB(pid), 0), taskPids, taskKiB: sum(taskPids) };
}

async function measureMemory(rig: Containerd, m: RuntimeMeasurement, extra: readonly string[], image: string, tag: string): Promise<void> {
  const id = `rss-${tag}`;
  const r = await rig.ctr(['run', '-d', '--runtime', m.runtime, ...extra, image, id, 'sleep', '1000'], { timeoutMs: RUN_TIMEOUT_MS });
  try {
    if (r.code !== 0) {
      m.failures.push(`ctr run -d sleep: exit ${r.code}: ${r.stderr.trim().slice(-300)}`);
      return;
    }
    // Let the shim settle after start (ours compacts its heap 1 s after a create).
    await new Promise((res) => setTimeout(res, 2000));
    const mem = shimMemory(rig, m.shim);
    if (mem.shimPids.length === 0) m.failures.push(`no ${m.shim} process naming ${rig.address} while the sleep task ran`);
    else {
      m.shimProcesses = mem.shimPids.length;
      m.shimRssMiB = round(mem.shimKiB / 1024, 2);
      m.shimPssMiB = round(mem.shimPssKiB / 1024, 2);
      m.taskRssMiB = round(mem.taskKiB / 1024, 2);
      m.taskProcesses = mem.taskPids.length;
    }
  } finally {
    await rig.ctr(['tasks', 'delete', '--force', id], { timeoutMs: 20_000 }).catch(() => null);
    await rig.ctr(['containers', 'delete', id], { timeoutMs: 20_000 }).catch(() => null);
  }
}

export async function containerdBenchmarks(opts: ContainerdBenchOptions): Promise<ContainerdSection> {
  const problem = containerdProblem();
  if (problem) return skippedContainerd({ skipped: problem });
  const runs = opts.runs ?? (opts.full ? 30 : 10);
  const search = shimSearchPath();
  const runtimes: Record<string, RuntimeMeasurement> = {};
  for (const runtime of opts.runtimes ?? DEFAULT_RUNTIMES) {
    const shim = shimBinaryName(runtime);
    const m: RuntimeMeasurement = { runtime, shim, firstOutputMs: null, samplesMs: [], shimRssMiB: null, shimProcesses: 0, taskRssMiB: null, taskProcesses: 0, failures: [] };
    if (!findOnPath(shim, search)) {
      m.skipped = `${shim} is not on containerd's PATH (${join(packageRoot, 'bin')}, then $PATH)`;
      opts.onProgress(`containerd: ${runtime}: skipped, ${m.skipped}`);
    }
    runtimes[runtime] = m;
  }
  const measured = Object.values(runtimes).filter((m) => !m.skipped);
  const version = spawnSync('containerd', ['--version'], { encoding: 'utf8' }).stdout.trim().split(' ')[2] || null;
  const notes: string[] = [];
  const rig = await startContainerd({ name: 'bench', shimPath: [join(packageRoot, 'bin')] });
  track(rig.pid);
  try {
    const image = await importBusybox(rig);
    // One untimed run each (page cache, the snapshot's first unpack, the shim binary's first start).
    const extra = (m: RuntimeMeasurement) => opts.runArgs?.[m.runtime] ?? [];
    for (const m of measured) await firstOutput(rig, m, extra(m), image, `warm-${m.shim.slice('containerd-shim-'.length)}`).catch((err: Error) => m.failures.push(`warm-up: ${err.message}`));
    for (let round = 0; round < runs; round++) {
      const order = round % 2 === 0 ? measured : [...measured].reverse();
      for (const m of order) {
        try {
          m.samplesMs.push(await firstOutput(rig, m, extra(m), image, `first-${round}-${m.shim.slice('containerd-shim-'.length)}`));
        } catch (err) {
          m.failures.push((err as Error).message);
        }
      }
      opts.onProgress(`containerd: round ${round + 1}/${runs}: ${measured.map((m) => `${m.runtime} ${m.samplesMs.at(-1)?.toFixed(1) ?? '—'} ms`).join(', ')}`);
    }
    for (const m of measured) {
      m.firstOutputMs = m.samplesMs.length ? summarize(m.samplesMs) : null;
      m.samplesMs = m.samplesMs.map((v) => round(v, 3));
      await measureMemory(rig, m, extra(m), image, m.shim.slice('containerd-shim-'.length));
      opts.onProgress(`containerd: ${m.runtime}: shim RSS ${m.shimRssMiB ?? '—'} MiB in ${m.shimProcesses} process(es), the rest of the task ${m.taskRssMiB ?? '—'} MiB in ${m.taskProcesses}`);
    }
    const section: ContainerdSection = {
      where: 'l0', runs, containerdVersion: version, image, command: COMMAND, control: CONTROL_RUNTIME,
      runtimes, ratios: {}, notes,
    };
    section.ratios = containerdRatios(runtimes, section.control);
    return section;
  } finally {
    await rig.stop();
    untrack(rig.pid);
    const left = rig.leftovers();
    if (left.length) notes.push(`left after stopping containerd: ${left.join('; ')}`);
  }
}
