// The nested-KVM harness: boots an L1 VM under QEMU TCG with an emulated AMD SVM CPU, runs one
// command in it, and returns its output and exit code. In L1, kvm_amd gives a real /dev/kvm, on
// which the project's own node, addon and VMM can boot stock Linux guests (L2) — which this host's
// PVM /dev/kvm cannot (DESIGN.md §6). See docs/nested-harness.md.
//
// The command sees the host's root read-only at the same paths (9p, cache=loose), writable tmpfs
// on /tmp and /run, fresh /proc, /sys, /dev (+ /dev/pts, /dev/shm), cgroup2 on /sys/fs/cgroup with
// cpu, memory and pids enabled, the scratch dir writable at its host path (9p), and the cache dir
// (cacheDir(): kernels, initrds, images) writable through an overlay whose upper layer is L1's
// memory: reads reach the host's cache, writes vanish with L1.
//
// Channels: the kernel console (ttyS0) goes to a file; the command's stdout+stderr go to a
// virtio-serial port that QEMU connects to its own stdout, which we read live. /init frames the
// command with markers on that port (START before it runs, EXIT <code> after, FAIL <why> when L1
// cannot be set up), each carrying a random nonce so the command cannot fake one.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { cacheDir } from '../../src/guest/cache.js';
import { resolveKernel } from '../../src/guest/kernel.js';
import { tscKhzFromCpuinfo } from '../../src/hypervisor/qemu/command.js';
import { buildL1Initrd, L1_MARK_PREFIX, L1_OUTPUT_PORT, L1_ROOT_TAG, L1_SCRATCH_TAG } from './l1-initrd.js';
import { vmlinuxFor } from './vmlinux.js';

export interface RunInL1Options {
  /** argv of the command; run with the host's PATH, from `cwd`. */
  command: string[];
  /** Added to HOME, PATH (the host's), VC_NESTED_L1=1 and VC_L1_SCRATCH (the scratch dir's path). */
  env?: Record<string, string>;
  /** Working directory in L1 (default: this process's cwd; it must exist in the host's root). */
  cwd?: string;
  /** A host directory the command may write, at the same path in L1; default: a fresh one under /tmp, removed afterwards. */
  scratchDir?: string;
  /** L1 memory (default 4096 MiB). */
  memoryMiB?: number;
  /** L1 vCPUs (default 2; TCG runs one host thread per vCPU). */
  cpus?: number;
  /** QEMU's -cpu (default EPYC,+svm,+npt); one without svm shows the no-KVM error. */
  cpuModel?: string;
  /** From QEMU's start to the command's end (default 10 min); then QEMU is killed. */
  timeoutMs?: number;
  /** The command's stdout+stderr as it arrives. */
  onOutput?: (chunk: string) => void;
  /** Host-side steps (kernel, initrd) and timings. */
  onProgress?: (msg: string) => void;
  signal?: AbortSignal;
}

export interface L1Result {
  exitCode: number;
  /** The command's stdout and stderr, interleaved as written. */
  output: string;
  /** L1's kernel console (and /init's own lines). */
  console: string;
  /** QEMU start → command start. */
  bootMs: number;
  /** QEMU start → command end. */
  totalMs: number;
}

export type L1ErrorCode = 'L1_NO_KVM' | 'L1_SETUP_FAILED' | 'L1_EXITED' | 'L1_TIMEOUT' | 'L1_QEMU_FAILED' | 'L1_ABORTED' | 'L1_INVALID';

export class L1Error extends Error {
  constructor(readonly code: L1ErrorCode, message: string, readonly console: string, readonly output: string) {
    super(message);
    this.name = 'L1Error';
  }
}

/**
 * Why L1's own kernel panicked ("corrupted stack end detected inside scheduler"), or null: an
 * L1_EXITED whose console has this is L1 failing, not the command (docs/nested-harness.md).
 */
export function l1KernelPanic(err: unknown): string | null {
  if (!(err instanceof L1Error) || err.code !== 'L1_EXITED') return null;
  const m = /Kernel panic - not syncing: ?(.*)/.exec(err.console);
  return m ? m[1]!.trim() : null;
}

const QEMU = 'qemu-system-x86_64';
/** How long L1 gets to power off by itself after the command ended, before QEMU is killed. */
const POWEROFF_GRACE_MS = 2000;

export async function runInL1(opts: RunInL1Options): Promise<L1Result> {
  if (!Array.isArray(opts.command) || opts.command.length === 0 || opts.command.some((a) => typeof a !== 'string')) {
    throw new L1Error('L1_INVALID', `runInL1: command must be a non-empty array of strings (got ${JSON.stringify(opts.command)})`, '', '');
  }
  const cwd = opts.cwd ?? process.cwd();
  if (!isAbsolute(cwd)) throw new L1Error('L1_INVALID', `runInL1: cwd must be absolute (got ${cwd})`, '', '');
  if (opts.scratchDir !== undefined && !isAbsolute(opts.scratchDir)) throw new L1Error('L1_INVALID', `runInL1: scratchDir must be absolute (got ${opts.scratchDir})`, '', '');
  for (const [name, v] of [['memoryMiB', opts.memoryMiB], ['cpus', opts.cpus]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new L1Error('L1_INVALID', `runInL1: ${name} must be a positive integer (got ${v})`, '', '');
  }
  const progress = opts.onProgress ?? (() => {});

  const t0 = Date.now();
  const kernel = await resolveKernel({ flavor: 'generic', onProgress: progress, signal: opts.signal });
  const vmlinux = await vmlinuxFor(kernel.kernelPath, { onProgress: progress });
  const initrd = await buildL1Initrd(kernel, { onProgress: progress });
  progress(`l1: kernel ${kernel.release}${vmlinux ? ' (vmlinux, PVH)' : ''}, initrd ${initrd.cached ? 'cached' : 'built'}, ${Date.now() - t0} ms`);

  const ctl = await mkdtemp('/tmp/vc-l1-');
  const ownScratch = opts.scratchDir === undefined;
  const scratch = opts.scratchDir ?? `${ctl}-scratch`;
  const cache = cacheDir();
  try {
    await mkdir(scratch, { recursive: true });
    await mkdir(cache, { recursive: true });
    const nonce = randomBytes(12).toString('hex');
    const env: Record<string, string> = {
      HOME: process.env.HOME ?? homedir(),
      PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      ...pick(process.env, ['VC_CACHE_DIR', 'XDG_CACHE_HOME']),
      ...opts.env,
      VC_NESTED_L1: '1',
      VC_L1_SCRATCH: scratch,
    };
    await writeFile(`${ctl}/params.sh`, l1Params({ nonce, scratch, cache }));
    await writeFile(`${ctl}/run.sh`, l1RunScript({ command: opts.command, env, cwd }));
    const tscKhz = tscKhzFromCpuinfo(await readFile('/proc/cpuinfo', 'utf8').catch(() => ''));
    const args = l1QemuArgs({
      kernel: vmlinux ?? kernel.kernelPath, initrd: initrd.path, ctl, scratch,
      memoryMiB: opts.memoryMiB ?? 4096, cpus: opts.cpus ?? l1CpusFromEnv(), cpuModel: opts.cpuModel, tscKhz,
    });
    return await boot(args, { ...opts, ctl, nonce });
  } finally {
    await rm(ctl, { recursive: true, force: true });
    if (ownScratch) await rm(scratch, { recursive: true, force: true });
  }
}

interface BootContext extends RunInL1Options { ctl: string; nonce: string }

async function boot(args: string[], ctx: BootContext): Promise<L1Result> {
  const consolePath = `${ctx.ctl}/console.log`;
  const started = Date.now();
  // stdin stays an open pipe: at EOF QEMU would tell the guest the port's host side closed, and
  // the guest's writes would then block.
  const child = spawn(QEMU, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const killNow = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.once('exit', killNow); // a dying harness takes QEMU along
  const scanner = new MarkerScanner(ctx.nonce);
  const decoder = new StringDecoder('utf8');
  let output = '';
  let stderr = '';
  let startedAt: number | undefined;
  let exitCode: number | undefined;
  let failure: string | undefined;

  const emit = (text: string) => {
    if (!text) return;
    output += text;
    ctx.onOutput?.(text);
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    // 'close', not 'exit': the last bytes of stdout (a FAIL mark) are read before it.
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const done = new Promise<void>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      for (const item of scanner.feed(chunk)) {
        if (item.kind === 'text') emit(decoder.write(item.data));
        else if (item.kind === 'start') { startedAt ??= Date.now(); }
        else if (item.kind === 'exit') { exitCode = item.code; resolve(); }
        else { failure = item.why; resolve(); }
      }
    });
    void exited.then(() => resolve());
  });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdin!.on('error', () => {});

  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<'timeout' | 'aborted'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ctx.timeoutMs ?? 600_000);
    onAbort = () => resolve('aborted');
    if (ctx.signal?.aborted) onAbort();
    else ctx.signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const why = await Promise.race([done.then(() => undefined), stopped]);
    const endedAt = Date.now();
    // L1 powers itself off after the EXIT mark; don't wait long for it (DESIGN §6).
    if (exitCode !== undefined) await Promise.race([exited, sleep(POWEROFF_GRACE_MS)]);
    killNow();
    const result = await exited;
    for (const item of scanner.end()) if (item.kind === 'text') emit(decoder.write(item.data));
    emit(decoder.end());
    const consoleText = await readFile(consolePath, 'utf8').catch(() => '');
    const tail = (lines: string[]) => (lines.length ? `\n--- L1 console ---\n${lines.join('\n')}` : '');
    if (why === 'timeout') {
      throw new L1Error('L1_TIMEOUT', `L1: no result within ${ctx.timeoutMs ?? 600_000} ms (${startedAt ? 'the command was running' : 'L1 was still booting'}); QEMU killed${tail(lastLines(consoleText, 30))}`, consoleText, output);
    }
    if (why === 'aborted') throw new L1Error('L1_ABORTED', 'L1: aborted; QEMU killed', consoleText, output);
    if (failure !== undefined) {
      const noKvm = /kvm/i.test(failure);
      const relevant = noKvm ? consoleText.split('\n').filter((l) => /kvm|svm|vc-l1/i.test(l)).slice(-30) : lastLines(consoleText, 30);
      throw new L1Error(noKvm ? 'L1_NO_KVM' : 'L1_SETUP_FAILED', `L1: ${failure}${tail(relevant)}`, consoleText, output);
    }
    if (exitCode === undefined) {
      if (result.error) {
        const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
        throw new L1Error('L1_QEMU_FAILED', missing ? `L1: ${QEMU} is not installed (apt-get install qemu-system-x86)` : `L1: cannot start ${QEMU}: ${result.error.message}`, consoleText, output);
      }
      const qemuSaid = qemuErrors(stderr);
      throw new L1Error(
        startedAt || consoleText ? 'L1_EXITED' : 'L1_QEMU_FAILED',
        `L1: QEMU exited (${result.signal ?? `code ${result.code}`}) ${startedAt ? 'before the command finished' : 'before the command started'}` +
          `${qemuSaid ? `: ${qemuSaid}` : ''}${tail(lastLines(consoleText, 30))}`,
        consoleText, output,
      );
    }
    return { exitCode, output, console: consoleText, bootMs: (startedAt ?? endedAt) - started, totalMs: endedAt - started };
  } finally {
    clearTimeout(timer);
    if (onAbort) ctx.signal?.removeEventListener('abort', onAbort);
    killNow();
    await exited;
    process.removeListener('exit', killNow);
  }
}

export interface L1QemuArgsInput {
  kernel: string;
  initrd: string;
  ctl: string;
  scratch: string;
  memoryMiB: number;
  cpus: number;
  cpuModel?: string;
  tscKhz?: number;
}

/**
 * QEMU's command line for L1. microvm (no PCI, no firmware tables beyond ACPI) with the legacy
 * PIT/PIC/RTC TCG needs; virtio-mmio devices found through ACPI; EPYC with SVM and nested paging
 * so that kvm_amd loads; multi-threaded TCG, one host thread per vCPU.
 */
export function l1QemuArgs(a: L1QemuArgsInput): string[] {
  const cmdline = [
    'console=ttyS0', 'quiet', 'panic=-1', 'mitigations=off', 'tsc=reliable',
    ...(a.tscKhz ? [`tsc_early_khz=${a.tscKhz}`] : []),
    `vc_ctl=${a.ctl}`,
  ].join(' ');
  for (const [what, p] of [['ctl', a.ctl], ['scratch', a.scratch]] as const) {
    if (/[\s,]/.test(p)) throw new L1Error('L1_INVALID', `runInL1: the ${what} path ${JSON.stringify(p)} has a space or a comma (QEMU option syntax)`, '', '');
  }
  return [
    '-M', 'microvm,pit=on,pic=on,rtc=on,acpi=on',
    // VC_L1_TCG_THREAD=single: one host thread for all of L1's vCPUs (for comparing L1's stability).
    '-accel', `tcg,thread=${process.env.VC_L1_TCG_THREAD === 'single' ? 'single' : 'multi'}`,
    '-cpu', a.cpuModel ?? 'EPYC,+svm,+npt',
    '-smp', String(a.cpus),
    '-m', `${a.memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', a.kernel,
    '-initrd', a.initrd,
    '-append', cmdline,
    '-chardev', `file,id=console,path=${a.ctl}/console.log`,
    '-serial', 'chardev:console',
    '-device', 'virtio-serial-device,max_ports=2',
    '-chardev', 'stdio,id=out,signal=off',
    '-device', `virtserialport,chardev=out,name=${L1_OUTPUT_PORT}`,
    '-fsdev', 'local,id=root,path=/,security_model=none,readonly=on,multidevs=remap',
    '-device', `virtio-9p-device,fsdev=root,mount_tag=${L1_ROOT_TAG}`,
    '-fsdev', `local,id=scratch,path=${a.scratch},security_model=none,multidevs=remap`,
    '-device', `virtio-9p-device,fsdev=scratch,mount_tag=${L1_SCRATCH_TAG}`,
    // VC_L1_MONITOR=PATH: QEMU's human monitor on a Unix socket, to look at a stuck L1 (info registers).
    ...(process.env.VC_L1_MONITOR ? ['-monitor', `unix:${process.env.VC_L1_MONITOR},server=on,wait=off`] : []),
  ];
}

/** L1's vCPUs where the caller names none: 2, or VC_L1_CPUS (1–8) to compare L1's stability with fewer. */
export function l1CpusFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.VC_L1_CPUS;
  if (raw === undefined || raw === '') return 2;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new L1Error('L1_INVALID', `runInL1: VC_L1_CPUS must be a whole number from 1 to 8, got ${JSON.stringify(raw)}`, '', '');
  return n;
}

/** Single-quoted for sh: safe for any string. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** $ctl/params.sh, sourced by /init (busybox sh). */
export function l1Params(p: { nonce: string; scratch: string; cache: string }): string {
  return `VC_NONCE=${shQuote(p.nonce)}\nVC_SCRATCH=${shQuote(p.scratch)}\nVC_CACHE=${shQuote(p.cache)}\n`;
}

/** $ctl/run.sh, run by the host's /bin/sh inside the chroot: cwd, a clean env, the command. */
export function l1RunScript(r: { command: readonly string[]; env: Record<string, string>; cwd: string }): string {
  for (const k of Object.keys(r.env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new L1Error('L1_INVALID', `runInL1: env name ${JSON.stringify(k)} is not a valid variable name`, '', '');
  }
  const env = Object.entries(r.env).map(([k, v]) => shQuote(`${k}=${v}`)).join(' ');
  return `cd ${shQuote(r.cwd)} || exit 125\nexec /usr/bin/env -i ${env} ${r.command.map(shQuote).join(' ')}\n`;
}

export type ScanItem =
  | { kind: 'text'; data: Buffer }
  | { kind: 'start' }
  | { kind: 'exit'; code: number }
  | { kind: 'fail'; why: string };

const RS = 0x1e;
const MARK_PREFIX = L1_MARK_PREFIX;
const MARK_RE = new RegExp(`^${MARK_PREFIX}(START|EXIT|FAIL) (\\S+)(?: ([^]*))?$`);
const MAX_MARK = 600;

/**
 * Splits the output port's bytes into command output and /init's markers
 * (`\x1eVC-L1-<KIND> <nonce>[ <arg>]\x1e`). A marker with another nonce is output like any other
 * bytes. Bytes that might begin a marker are held back until the rest arrives.
 */
export class MarkerScanner {
  private pending = Buffer.alloc(0);
  constructor(private readonly nonce: string) {}

  feed(chunk: Buffer): ScanItem[] {
    const items: ScanItem[] = [];
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let from = 0;
    for (;;) {
      const rs = buf.indexOf(RS, from);
      if (rs < 0) break;
      const end = buf.indexOf(RS, rs + 1);
      const head = buf.toString('latin1', rs + 1, Math.min(buf.length, rs + 1 + MARK_PREFIX.length));
      if (!MARK_PREFIX.startsWith(head) && !head.startsWith(MARK_PREFIX)) { from = rs + 1; continue; }
      if (end < 0) {
        if (buf.length - rs <= MAX_MARK) { // maybe a marker, cut short: wait for more
          if (rs > 0) items.push({ kind: 'text', data: buf.subarray(0, rs) });
          this.pending = Buffer.from(buf.subarray(rs));
          return items;
        }
        from = rs + 1;
        continue;
      }
      const mark = this.parse(buf.toString('utf8', rs + 1, end));
      if (!mark) { from = end; continue; }
      if (rs > 0) items.push({ kind: 'text', data: buf.subarray(0, rs) });
      items.push(mark);
      buf = buf.subarray(end + 1);
      from = 0;
    }
    if (buf.length) items.push({ kind: 'text', data: buf });
    this.pending = Buffer.alloc(0);
    return items;
  }

  /** At the end of the stream: whatever was held back is output after all. */
  end(): ScanItem[] {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest.length ? [{ kind: 'text', data: rest }] : [];
  }

  private parse(body: string): ScanItem | undefined {
    const m = MARK_RE.exec(body);
    if (!m) return undefined;
    const [, kind, nonce, arg] = m;
    // /init may fail before it has read the nonce: a FAIL with "none" is still a failure.
    if (nonce !== this.nonce && !(kind === 'FAIL' && nonce === 'none')) return undefined;
    if (kind === 'START') return { kind: 'start' };
    if (kind === 'EXIT') return /^\d+$/.test(arg ?? '') ? { kind: 'exit', code: Number(arg) } : undefined;
    return { kind: 'fail', why: arg ?? 'unknown failure' };
  }
}

function pick(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => (env[n] ? [[n, env[n]!]] : [])));
}

function lastLines(text: string, n: number): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '').slice(-n);
}

/** QEMU's stderr without the CPUID lines TCG prints for every EPYC feature it does not emulate. */
function qemuErrors(stderr: string): string {
  return stderr.split('\n').filter((l) => l.trim() && !/TCG doesn't support requested feature/.test(l)).slice(-5).join(' / ');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
