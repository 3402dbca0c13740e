// By hand, for profiling agent I/O (issue 18, item 1): one pod per hypervisor, kept running, then
// rounds of exec round trips, stdout and stdin transfers, the hypervisors taking turns. Beside
// each transfer: the CPU time the VMM process and this process used, and the guest's interrupt
// counts. Meant to run where /dev/kvm boots stock guests (L1 of the nested harness):
//
//   node dist/test/harness/cli.js -- node dist/bench/agent-io-probe.js [--rounds N] [--execs N] [--bytes N] builtin qemuKvm
//
// Prints progress on stderr and one `BENCH-JSON {...}` line on stdout.
import { readdirSync, readFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createPod, enterPod, podStatus, startPod } from '../src/index.js';
import { teardownRoot } from '../test/helpers/pods.js';
import { benchJsonLine } from './lib/bench-json.js';
import { median, round } from './lib/stats.js';
import { collectOutput, execRoundTrip, stdinThroughput } from './pod-measure.js';

type Which = 'builtin' | 'qemuKvm';
const HYPERVISOR: Record<Which, 'kvm' | 'qemu'> = { builtin: 'kvm', qemuKvm: 'qemu' };

interface Args { rounds: number; execs: number; bytes: number; which: Which[] }

function parseArgs(argv: string[]): Args {
  const args: Args = { rounds: 3, execs: 20, bytes: 8 << 20, which: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--(rounds|execs|bytes)$/.exec(a);
    if (m) {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${a}: expected a positive integer, got ${argv[i]}`);
      args[m[1] as 'rounds' | 'execs' | 'bytes'] = v;
    } else if (a === 'builtin' || a === 'qemuKvm') args.which.push(a);
    else throw new Error(`unknown argument ${a}`);
  }
  if (args.which.length === 0) args.which = ['builtin', 'qemuKvm'];
  return args;
}

/** utime + stime of a process and its threads, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/** The VMM's cgroup v2 cpu.stat (throttling), if it has a cgroup of its own. */
function cgroupCpuStat(pid: number): Record<string, number> {
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
    if (!line || line === '0::/') return {};
    const text = readFileSync(`/sys/fs/cgroup${line.slice(3)}/cpu.stat`, 'utf8');
    const out: Record<string, number> = {};
    for (const l of text.trim().split('\n')) {
      const [k, v] = l.split(' ');
      if (k === 'nr_throttled' || k === 'throttled_usec' || k === 'nr_periods') out[k] = Number(v);
    }
    return out;
  } catch {
    return {};
  }
}

/** CPU ms per thread name (comm) of a process. */
function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[`${name}/${tid}`] = (out[`${name}/${tid}`] ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    } catch { /* gone */ }
  }
  return out;
}

/** The guest's /proc/stat cpu line: user nice system idle iowait irq softirq (ms at USER_HZ 100). */
async function guestCpu(id: string, root: string): Promise<Record<string, number>> {
  const proc = await enterPod(id, ['head', '-1', '/proc/stat'], { root });
  const [text] = await Promise.all([collectOutput(proc.stdout), proc.wait()]);
  const f = text.trim().split(/\s+/).slice(1).map(Number);
  const names = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
  return Object.fromEntries(names.map((n, i) => [n, (f[i] ?? 0) * 10]));
}

// Socket writes and reads of this process, to see how the host client frames a transfer.
const io = { writes: 0, writeBytes: 0, reads: 0, readBytes: 0 };
const origWrite = Socket.prototype.write;
Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
  io.writes++;
  if (chunk && typeof (chunk as Buffer).length === 'number') io.writeBytes += (chunk as Buffer).length;
  return (origWrite as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
} as typeof Socket.prototype.write;
const origPush = Socket.prototype.push;
Socket.prototype.push = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
  if (chunk) { io.reads++; io.readBytes += (chunk as Buffer).length; }
  return (origPush as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
} as typeof Socket.prototype.push;

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function selfSystemCpuMs(): number {
  return process.cpuUsage().system / 1000;
}

async function guestInterrupts(id: string, root: string): Promise<Record<string, number>> {
  const proc = await enterPod(id, ['cat', '/proc/interrupts'], { root });
  const [text] = await Promise.all([collectOutput(proc.stdout), proc.wait()]);
  const out: Record<string, number> = {};
  for (const line of text.split('\n').slice(1)) {
    const m = /^\s*(\S+):\s+(\d+)\s+(.*)$/.exec(line);
    if (m) out[`${m[1]} ${m[3]!.trim().split(/\s+/).slice(-1)[0]}`] = Number(m[2]);
  }
  return out;
}

/** stdout throughput with the number of STDOUT chunks (one per frame) the process stream emitted. */
async function countedStdout(id: string, root: string, bytes: number, onFrames: (n: number) => void): Promise<{ ms: number; mbps: number }> {
  const t0 = performance.now();
  const proc = await enterPod(id, ['head', '-c', String(bytes), '/dev/zero'], { root });
  proc.stderr.resume();
  let n = 0, frames = 0;
  proc.stdout.on('data', (c: Buffer) => { n += c.length; frames++; });
  await Promise.all([proc.wait(), new Promise((r) => proc.stdout.once('end', r))]);
  const ms = performance.now() - t0;
  if (n !== bytes) throw new Error(`stdout: ${n} bytes, expected ${bytes}`);
  onFrames(frames);
  return { ms, mbps: bytes / 1e6 / (ms / 1000) };
}

function delta(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (v - (a[k] ?? 0) > 0) d[k] = v - (a[k] ?? 0);
  return d;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const root = await mkdtemp('/tmp/vcp-');
  const samples: Record<string, Record<string, unknown[]>> = {};
  try {
    const pids: Partial<Record<Which, number>> = {};
    for (const which of args.which) {
      const id = which;
      await createPod({ id, hypervisor: HYPERVISOR[which], memoryMiB: 256, vcpus: 1 }, { root });
      const t0 = performance.now();
      const st = await startPod(id, { root, bootTimeoutMs: 300_000 });
      pids[which] = st.pid!;
      log(`${which}: started in ${round(performance.now() - t0, 0)} ms, pid ${st.pid}, accel ${st.accel}`);
      for (let i = 0; i < 2; i++) await execRoundTrip(id, root);
      samples[which] = { exec: [], stdout: [], stdin: [] };
    }
    for (let r = 0; r < args.rounds; r++) {
      const order = r % 2 === 0 ? args.which : [...args.which].reverse();
      for (const which of order) {
        const id = which;
        const pid = pids[which]!;
        const s = samples[which]!;
        const execs: number[] = [];
        for (let i = 0; i < args.execs; i++) execs.push(await execRoundTrip(id, root));
        s.exec!.push(round(median(execs), 2));
        for (const dir of ['stdout', 'stdin'] as const) {
          const irq0 = await guestInterrupts(id, root);
          const g0 = await guestCpu(id, root);
          const th0 = threadCpuMs(pid);
          const cg0 = cgroupCpuStat(pid);
          const io0 = { ...io };
          const v0 = cpuMs(pid), n0 = selfCpuMs(), ns0 = selfSystemCpuMs();
          let frames = 0;
          const res = dir === 'stdout' ? await countedStdout(id, root, args.bytes, (n) => { frames = n; }) : await stdinThroughput(id, root, args.bytes, 600_000);
          const vmmCpu = cpuMs(pid) - v0, nodeCpu = selfCpuMs() - n0, nodeSys = selfSystemCpuMs() - ns0;
          const threads = delta(th0, threadCpuMs(pid));
          const cgroup = delta(cg0, cgroupCpuStat(pid));
          const ioD = { writes: io.writes - io0.writes, writeKiB: round((io.writeBytes - io0.writeBytes) / 1024, 0), reads: io.reads - io0.reads, readKiB: round((io.readBytes - io0.readBytes) / 1024, 0) };
          const guest = delta(g0, await guestCpu(id, root));
          const irq = delta(irq0, await guestInterrupts(id, root));
          s[dir]!.push({ mbps: round(res.mbps, 2), ms: round(res.ms, 0), vmmCpuMs: round(vmmCpu, 0), nodeCpuMs: round(nodeCpu, 0), nodeSystemCpuMs: round(nodeSys, 0), frames, threads, cgroup, guest, io: ioD, irq });
        }
        log(`round ${r + 1} ${which}: exec p50 ${s.exec!.at(-1)} ms, stdout ${JSON.stringify(s.stdout!.at(-1))}, stdin ${JSON.stringify(s.stdin!.at(-1))}`);
      }
    }
    const summary: Record<string, unknown> = {};
    for (const which of args.which) {
      const s = samples[which]!;
      summary[which] = {
        execP50Ms: median(s.exec as number[]),
        stdoutMBps: median((s.stdout as { mbps: number }[]).map((x) => x.mbps)),
        stdinMBps: median((s.stdin as { mbps: number }[]).map((x) => x.mbps)),
      };
    }
    log(JSON.stringify(summary));
    process.stdout.write(benchJsonLine({ version: 1, args, summary, samples }));
  } finally {
    await teardownRoot(root).catch(() => {});
    await rm(root, { recursive: true, force: true }).catch(() => {});
  }
}

await main();
