// Process plumbing for the benchmarks: wall-clock time with sub-millisecond resolution, the VMM's
// timing line, a registry of every process a benchmark started (so that an interrupted run can
// still kill them, by pid), and a launcher that starts many VMM processes quickly from one shell.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from '../../test/helpers/containerd-host.js';

/** Wall-clock now in ms with µs resolution (performance clock anchored at Node's start). */
export function wallNowMs(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface VmmTiming {
  builtUs: number;
  firstExitUs: number;
  /** Wall-clock time of the first guest exit, ms since the epoch; null when there was none. */
  firstExitUnixMs: number | null;
}

/** Parses `vc-vmm: timing: main -> VM built N us -> first guest exit M us (unix S.US)` from stderr. */
export function parseVmmTiming(stderr: string): VmmTiming | null {
  const m = /vc-vmm: timing: main -> VM built (\d+) us -> first guest exit (\d+) us \(unix (\d+)\.(\d{6})\)/.exec(stderr);
  if (!m) return null;
  const unixMs = Number(m[3]) * 1000 + Number(m[4]) / 1000;
  return { builtUs: Number(m[1]), firstExitUs: Number(m[2]), firstExitUnixMs: Number(m[2]) === 0 ? null : unixMs };
}

/**
 * Parses `vc-vmm: timing parts (us): {"kvmOpen":12,…}` (Vm::StartPartsJson plus configParse):
 * each step of VM construction and start, in µs; null when the line is missing or not an object
 * of numbers.
 */
export function parseVmmParts(stderr: string): Record<string, number> | null {
  const m = /vc-vmm: timing parts \(us\): (\{.*\})/.exec(stderr);
  if (!m) return null;
  try {
    const parts = JSON.parse(m[1]!) as unknown;
    if (typeof parts !== 'object' || parts === null || Array.isArray(parts)) return null;
    const entries = Object.entries(parts as Record<string, unknown>);
    return entries.every(([, v]) => typeof v === 'number') ? Object.fromEntries(entries) as Record<string, number> : null;
  } catch {
    return null;
  }
}

// ---- every process we started, so that nothing outlives the run ----

const tracked = new Set<number>();

export function track(pid: number | undefined): void {
  if (pid) tracked.add(pid);
}
export function untrack(pid: number | undefined): void {
  if (pid) tracked.delete(pid);
}

// Alive and not a zombie: the test helpers' reading of /proc/PID/stat (bench builds on test/helpers).
export { pidAlive };

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
}

/** SIGTERM to the pids, SIGKILL to what is left after `graceMs`; returns how many still live after that. */
export async function killPids(pids: Iterable<number>, graceMs = 3000): Promise<number> {
  const list = [...pids];
  for (const pid of list) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && list.some(pidAlive)) await sleep(20);
  for (const pid of list) if (pidAlive(pid)) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (Date.now() < killDeadline && list.some(pidAlive)) await sleep(20);
  for (const pid of list) if (!pidAlive(pid)) untrack(pid);
  return list.filter(pidAlive).length;
}

/** Kills every tracked process (end of run, or an interrupted one). */
export async function killTracked(): Promise<number> {
  return killPids([...tracked], 1000);
}

export function killTrackedSync(): void {
  for (const pid of tracked) signal(pid, 'SIGKILL');
}

// ---- many VMM processes at once ----

// One shell forks every VMM of a batch (cheaper than Node's spawn per process) and stays to reap
// them; it prints "INDEX PID" per process, then "spawned".
const LAUNCH_SCRIPT = `
dir=$1; from=$2; n=$3; shift 3
i=$from; end=$((from + n))
while [ "$i" -lt "$end" ]; do
  "$@" </dev/null >"$dir/$i.out" 2>"$dir/$i.err" &
  echo "$i $!"
  i=$((i + 1))
done
echo spawned
wait
`;

export interface LaunchedVm {
  index: number;
  pid: number;
  outPath: string;
  errPath: string;
}

export interface Batch {
  shell: ChildProcess;
  vms: LaunchedVm[];
  /** Wall-clock ms just before the shell was spawned. */
  startedAtMs: number;
  exited: Promise<void>;
}

/** Starts `n` copies of `argv` (indices from..from+n-1), stdout/stderr to DIR/INDEX.out / .err. */
export function launchBatch(dir: string, from: number, n: number, argv: string[]): Promise<Batch> {
  return new Promise((resolve, reject) => {
    const startedAtMs = wallNowMs();
    const shell = spawn('sh', ['-c', LAUNCH_SCRIPT, 'sh', dir, String(from), String(n), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    track(shell.pid);
    const exited = new Promise<void>((r) => shell.once('exit', () => { untrack(shell.pid); r(); }));
    const vms: LaunchedVm[] = [];
    let buf = '', err = '', done = false;
    shell.stderr!.on('data', (d) => { err += d; });
    shell.stdout!.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^(\d+) (\d+)$/.exec(line);
        if (m) {
          const index = Number(m[1]), pid = Number(m[2]);
          track(pid);
          vms.push({ index, pid, outPath: join(dir, `${index}.out`), errPath: join(dir, `${index}.err`) });
        } else if (line === 'spawned' && !done) {
          done = true;
          resolve({ shell, vms, startedAtMs, exited });
        }
      }
    });
    shell.once('exit', (code) => {
      if (!done) reject(new Error(`launcher shell exited (${code}) before starting all VMs: ${err.trim()}`));
    });
  });
}

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export interface ReadyResult {
  ready: LaunchedVm[];
  failed: { vm: LaunchedVm; why: string }[];
}

/** Waits until every VM printed `marker` on its serial console (stdout), died, or the time ran out. */
export async function waitReady(vms: readonly LaunchedVm[], timeoutMs: number, marker = 'ready'): Promise<ReadyResult> {
  const pending = new Set(vms);
  const ready: LaunchedVm[] = [];
  const failed: { vm: LaunchedVm; why: string }[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const vm of [...pending]) {
      if (readText(vm.outPath).includes(marker)) {
        ready.push(vm);
        pending.delete(vm);
      } else if (!pidAlive(vm.pid)) {
        // It may have printed and exited between the two checks.
        if (readText(vm.outPath).includes(marker)) ready.push(vm);
        else failed.push({ vm, why: `exited before "${marker}": ${readText(vm.errPath).trim().split('\n').slice(-2).join(' / ') || '(no stderr)'}` });
        pending.delete(vm);
      }
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      for (const vm of pending) failed.push({ vm, why: `no "${marker}" within ${timeoutMs} ms` });
      break;
    }
    await sleep(pending.size > 200 ? 50 : 10);
  }
  return { ready, failed };
}

export function exists(path: string): boolean {
  return existsSync(path);
}
