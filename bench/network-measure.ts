// The measurements behind bench/network.ts, through the public API: bridge pods (the default
// network: CNI bridge vc0 in THIS process's network namespace, a netns and a tap per pod), two per
// hypervisor, and busybox in their containers (no iperf in the guest image):
//
//   host → guest   nc -l -p P -e wc -c in pod A; this process connects, sends N bytes, half-closes
//                  and waits for the count: connect → the count back
//   guest → host   dd if=/dev/zero bs=64k | nc GATEWAY P in pod A; this process counts: accept →
//                  the sender's EOF
//   guest ↔ guest  nc -l -p P -e wc -c in pod B, dd | nc B P in pod A, timed in A (adjtimex before
//                  and after, the guest's clock): start of dd → the count back from B
//   round trips    nc -l -p P -e cat in pod A; this process sends 1 byte and waits for it, N times
//                  on one connection (TCP_NODELAY); and ping -A from pod A to pod B
//
// Must run in a network namespace of its own (bench/network.ts starts network-inside.js under
// `unshare --net`): the bridge, the pods' veths and every address traffic goes to are in it.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createPod, enterContainer, podStatus, startPod, type PodProcess } from '../src/index.js';
import { readAll, teardownRoot } from '../test/helpers/pods.js';
import {
  counterDelta, DD_BLOCK, GUEST_COUNTERS_SCRIPT, guestClientScript, NIC_TEXT, parseGuestCounters, parseGuestTransfer, parsePing, parseRetransSegs, parseTcpExt, parseWcCount,
  type GuestCounters, type HostCounters, type NetDirection, type NetHypervisor, type NetMeasurement, type NetworkInsideArgs, type Transfer,
} from './network-format.js';
import { controlRequest } from '../src/hypervisor/kvm/control.js';
import { errorText } from './pod-measure.js';
import { round } from './lib/stats.js';

const API_HYPERVISOR: Record<NetHypervisor, 'kvm' | 'qemu'> = { builtin: 'kvm', qemu: 'qemu' };
const POD_MEMORY_MIB = 256;
/** The container every exec runs in: it only has to stay up. */
const IDLE = ['sleep', '2000000000'];
const CHUNK = Buffer.alloc(1 << 20);

export interface NetworkMeasureOptions extends NetworkInsideArgs {
  /** Per step (a pod start, one transfer); nested under TCG a pod boot takes tens of seconds. */
  stepTimeoutMs?: number;
  onProgress: (msg: string) => void;
  /**
   * Leave the pods running at the end: for a throwaway machine (L1), where stopping four pods
   * with their CNI teardown takes a minute of emulated work and the machine goes anyway.
   */
  keepPods?: boolean;
  /** After each round, the measurements so far. */
  onRound?: (roundsDone: number, results: Partial<Record<NetHypervisor, NetMeasurement | { error: string }>>, gateway: string | null) => void;
}

interface PodPair {
  which: NetHypervisor;
  a: string;
  b: string;
  ipA: string;
  ipB: string;
  /** Pod A's network namespace (its tap is there). */
  netnsA: string | null;
  result: NetMeasurement;
}

/** The IPv4 address of the CNI bridge in this namespace: where the guests reach this process. */
export function bridgeAddress(dev = 'vc0'): string {
  const out = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', dev], { encoding: 'utf8' });
  const addr = (JSON.parse(out) as { addr_info?: { local?: string }[] }[])[0]?.addr_info?.[0]?.local;
  if (!addr) throw new Error(`${dev} has no IPv4 address in this namespace`);
  return addr;
}

export async function measureNetwork(opts: NetworkMeasureOptions): Promise<{ results: Partial<Record<NetHypervisor, NetMeasurement | { error: string }>>; gateway: string | null; roundsDone: number }> {
  const timeoutMs = opts.stepTimeoutMs ?? 10 * 60_000;
  const progress = opts.onProgress;
  const root = await mkdtemp('/tmp/vcn-');
  const call = () => ({ root, signal: AbortSignal.timeout(timeoutMs) });
  const results: Partial<Record<NetHypervisor, NetMeasurement | { error: string }>> = {};
  const pairs: PodPair[] = [];
  let gateway: string | null = null;
  let roundsDone = 0;
  let port = 7100;
  try {
    // Pods: A and B per hypervisor, all four started at once (in L1 each boot takes tens of
    // seconds, much of it one emulated vCPU's work and the CNI plugins' start-up).
    const t0 = performance.now();
    const up = async (which: NetHypervisor, id: string) => {
      // No seccomp filter: the guest-to-guest client stamps its transfer with busybox `adjtimex`
      // (a read-only call), which our default profile denies with the calls that set the clock.
      await createPod({ id, hypervisor: API_HYPERVISOR[which], memoryMiB: POD_MEMORY_MIB, vcpus: 1, network: 'bridge', containers: [{ id: 'main', command: IDLE, security: { seccomp: 'unconfined' } }] }, call());
      const st = await startPod(id, { ...call(), bootTimeoutMs: timeoutMs });
      const addr = st.network.interfaces[0]?.addresses[0];
      if (!addr) throw new Error(`pod ${id} has no address: ${JSON.stringify(st.network)}`);
      progress(`${which}: pod ${id} up at ${addr} after ${ms(performance.now() - t0)} (${st.accel ?? 'built-in'})`);
      return { ip: addr.split('/')[0]!, netns: st.network.netns ?? null, accel: st.accel };
    };
    const booted = await Promise.all(opts.which.map(async (which) => {
      const [a, b] = await Promise.allSettled([up(which, `${which}-a`), up(which, `${which}-b`)]);
      return { which, a, b };
    }));
    for (const { which, a, b } of booted) {
      if (a.status === 'rejected' || b.status === 'rejected') {
        const why = errorText(a.status === 'rejected' ? a.reason : (b as PromiseRejectedResult).reason);
        progress(`${which}: pods failed: ${why}`);
        results[which] = { error: `pods: ${why}` };
        continue;
      }
      const result: NetMeasurement = {
        which, hypervisor: API_HYPERVISOR[which], accel: a.value.accel, nic: NIC_TEXT[which],
        transfers: { hostToGuest: [], guestToHost: [], guestToGuest: [] }, roundTripsMs: [], pingMs: [], pingSent: 0, pingReceived: 0, guestClock: null, failures: [],
      };
      pairs.push({ which, a: `${which}-a`, b: `${which}-b`, ipA: a.value.ip, ipB: b.value.ip, netnsA: a.value.netns, result });
      results[which] = result;
    }
    if (pairs.length === 0) return { results, gateway, roundsDone };
    gateway = bridgeAddress();
    progress(`bridge vc0 at ${gateway} in this namespace`);

    const ctx = { root, timeoutMs, gateway, nextPort: () => port++ };
    // Warm-up, untimed: ARP, the first exec in each container, small transfers each way.
    for (const p of pairs) {
      progress(`${p.which}: warm-up (ping, 1 MiB each way, 20 round trips)`);
      try {
        await pingPods(p, 3, ctx);
        const clock = await finish(await start(p.a, ['cat', '/sys/devices/system/clocksource/clocksource0/current_clocksource'], ctx), `clocksource in ${p.a}`, ctx);
        p.result.guestClock = clock.out.trim() || null;
        await hostToGuest(p, 1 << 20, ctx);
        await guestToHost(p, 1 << 20, ctx);
        await guestToGuest(p, 1 << 20, ctx);
        await roundTrips(p, 20, ctx);
      } catch (err) {
        progress(`${p.which}: warm-up failed: ${errorText(err)}`);
        p.result.failures.push(`warm-up: ${errorText(err)}`);
      }
    }

    const kinds: { name: string; run: (p: PodPair, round: number) => Promise<string> }[] = [
      ...(['hostToGuest', 'guestToHost', 'guestToGuest'] as const).map((d: NetDirection) => ({
        name: d,
        run: async (p: PodPair, n: number) => {
          const f = d === 'hostToGuest' ? hostToGuest : d === 'guestToHost' ? guestToHost : guestToGuest;
          // The guests' counters around the transfer (untimed): packets, interrupts, retransmissions.
          const sender = d === 'hostToGuest' ? null : p.a;
          const receiver = d === 'hostToGuest' ? p.a : d === 'guestToGuest' ? p.b : null;
          const s0 = sender ? await guestCounters(sender, ctx) : null;
          const r0 = receiver ? await guestCounters(receiver, ctx) : null;
          const h0 = d === 'guestToGuest' ? null : await hostCounters(p, root);
          const t = await f(p, opts.bytes, ctx);
          const h1 = h0 ? await hostCounters(p, root) : null;
          const s1 = sender ? await guestCounters(sender, ctx) : null;
          const r1 = receiver ? await guestCounters(receiver, ctx) : null;
          const delta = (a: GuestCounters | null, b: GuestCounters | null) => (a && b ? counterDelta(a, b) : null);
          const host = hostDelta(h0, h1);
          const tr: Transfer = { round: n, bytes: opts.bytes, ms: round3(t), sender: delta(s0, s1), receiver: delta(r0, r1), host };
          p.result.transfers[d].push(tr);
          return `${mib(opts.bytes)} in ${ms(t)} = ${round(opts.bytes / (1 << 20) / (t / 1000), 2)} MiB/s${counterText('sender', tr.sender)}${counterText('receiver', tr.receiver)}` +
            `${host ? `; bench side: ${host.retransSegs} retransmitted (${host.lossProbes} loss probes, ${host.rtoTimeouts} timeouts, ${host.fastRetrans} fast), tap dropped ${host.tapTxDropped} to the VMM, ${host.tapRxDropped} from it${host.vmmDropped !== null ? `, vc-vmm dropped ${host.vmmDropped}` : ''}` : ''}`;
        },
      })),
      {
        name: 'roundTrips',
        run: async (p: PodPair) => {
          const rtts = await roundTrips(p, opts.roundTrips, ctx);
          p.result.roundTripsMs.push(...rtts.map(round3));
          const sorted = [...rtts].sort((x, y) => x - y);
          return `${rtts.length} TCP round trips, median ${ms(sorted[Math.floor(sorted.length / 2)]!)}`;
        },
      },
      {
        name: 'ping',
        run: async (p: PodPair) => {
          const r = await pingPods(p, opts.pings, ctx);
          p.result.pingMs.push(...r.times);
          p.result.pingSent += r.sent;
          p.result.pingReceived += r.received;
          return `ping ${r.received}/${r.sent}, median ${ms([...r.times].sort((x, y) => x - y)[Math.floor(r.times.length / 2)] ?? NaN)}`;
        },
      },
    ];
    // By hand, to look at one measurement: VC_BENCH_NET_ONLY=hostToGuest,roundTrips (not used by npm run bench).
    const only = process.env.VC_BENCH_NET_ONLY?.split(',');
    if (only) kinds.splice(0, kinds.length, ...kinds.filter((k) => only.includes(k.name)));
    for (let n = 1; n <= opts.runs; n++) {
      // The order alternates by round, so that a drift in the machine's load falls on both alike.
      const order = n % 2 === 1 ? pairs : [...pairs].reverse();
      for (const k of kinds) {
        for (const p of order) {
          try {
            progress(`round ${n}/${opts.runs} ${p.which} ${k.name}: ${await k.run(p, n)}`);
          } catch (err) {
            progress(`round ${n}/${opts.runs} ${p.which} ${k.name} FAILED: ${errorText(err)}`);
            p.result.failures.push(`round ${n} ${k.name}: ${errorText(err)}`);
            await diagnose(p, root, progress);
          }
        }
      }
      roundsDone = n;
      opts.onRound?.(roundsDone, results, gateway);
    }
    return { results, gateway, roundsDone };
  } finally {
    if (opts.keepPods) {
      progress(`leaving the pods running (${root}): whoever called this discards the machine`);
    } else {
      progress('stopping and deleting the pods');
      await teardownRoot(root).catch(() => {});
      await rm(root, { recursive: true, force: true }).catch(() => {});
    }
  }
}

/** After a failure: whether the pods still run, and if one does not, the end of its console and of the kernel's log. */
async function diagnose(p: PodPair, root: string, progress: (msg: string) => void): Promise<void> {
  for (const id of [p.a, p.b]) {
    const st = await podStatus(id, { root }).catch((err: unknown) => ({ state: `unknown (${errorText(err)})` }));
    if (st.state === 'running') continue;
    progress(`pod ${id} is ${st.state}; the end of its console:`);
    const text = await readFile(join(root, 'pods', id, 'console.log'), 'utf8').catch((err: unknown) => `(${errorText(err)})`);
    for (const line of text.trimEnd().split('\n').slice(-25)) progress(`  ${line}`);
    try {
      const dmesg = execFileSync('dmesg', { encoding: 'utf8' }).trimEnd().split('\n').slice(-15);
      progress('the end of the kernel log here:');
      for (const line of dmesg) progress(`  ${line}`);
    } catch { /* no dmesg */ }
  }
}

interface Ctx {
  root: string;
  timeoutMs: number;
  gateway: string;
  nextPort: () => number;
}

/** TCP retransmissions in this namespace, the drops of the tap in `netns` and of vc-vmm; null when unreadable. */
async function hostCounters(p: PodPair, root: string): Promise<HostCounters | null> {
  try {
    const retransSegs = parseRetransSegs(readFileSync('/proc/net/snmp', 'utf8'));
    const ext = parseTcpExt(readFileSync('/proc/net/netstat', 'utf8'), ['TCPLossProbes', 'TCPTimeouts', 'TCPFastRetrans']);
    if (!p.netnsA) return null;
    const out = execFileSync('nsenter', [`--net=${p.netnsA}`, '--', 'ip', '-s', '-j', 'link', 'show', 'dev', 'tap0_vc'], { encoding: 'utf8' });
    const st = (JSON.parse(out) as { stats64?: { rx?: { dropped?: number }; tx?: { dropped?: number } } }[])[0]?.stats64;
    let vmmDropped: number | null = null;
    if (p.which === 'builtin') {
      const status = await controlRequest(join(root, 'pods', p.a, 'vmm.sock'), 'status').catch(() => null);
      const slots = ((status?.status as { slots?: unknown } | undefined)?.slots ?? []) as { net?: { dropped?: number } }[];
      const net = slots.find((x) => x.net)?.net;
      vmmDropped = typeof net?.dropped === 'number' ? net.dropped : null;
    }
    return {
      retransSegs, lossProbes: ext.TCPLossProbes!, rtoTimeouts: ext.TCPTimeouts!, fastRetrans: ext.TCPFastRetrans!,
      vmmDropped, tapTxDropped: st?.tx?.dropped ?? 0, tapRxDropped: st?.rx?.dropped ?? 0,
    };
  } catch {
    return null;
  }
}

function hostDelta(a: HostCounters | null, b: HostCounters | null): HostCounters | null {
  if (!a || !b) return null;
  return {
    retransSegs: b.retransSegs - a.retransSegs, lossProbes: b.lossProbes - a.lossProbes, rtoTimeouts: b.rtoTimeouts - a.rtoTimeouts,
    fastRetrans: b.fastRetrans - a.fastRetrans, tapTxDropped: b.tapTxDropped - a.tapTxDropped, tapRxDropped: b.tapRxDropped - a.tapRxDropped,
    vmmDropped: a.vmmDropped !== null && b.vmmDropped !== null ? b.vmmDropped - a.vmmDropped : null,
  };
}

/** The NIC's and TCP's counters in pod `pod`; null (and a note in the progress) when they cannot be read. */
async function guestCounters(pod: string, ctx: Ctx): Promise<GuestCounters | null> {
  try {
    const c = await start(pod, ['sh', '-c', GUEST_COUNTERS_SCRIPT], ctx);
    const r = await finish(c, `counters in ${pod}`, ctx);
    return parseGuestCounters(r.out);
  } catch {
    return null;
  }
}

function counterText(who: string, c: GuestCounters | null | undefined): string {
  if (!c) return '';
  const avg = (b: number, n: number) => (n ? Math.round(b / n) : 0);
  return `; ${who}: tx ${c.txPackets} pkts (avg ${avg(c.txBytes, c.txPackets)} B), rx ${c.rxPackets} pkts (avg ${avg(c.rxBytes, c.rxPackets)} B, ${c.rxDropped} dropped), ${c.irqs} NIC irqs, ${c.retransSegs} retransmitted`;
}

/** A process in pod `pod`'s container; its stdin is closed, its output collected. */
async function start(pod: string, argv: string[], ctx: Ctx): Promise<{ proc: PodProcess; done: Promise<{ out: string; err: string; code: number | null; signal: string | null }> }> {
  const proc = await enterContainer(pod, 'main', argv, { root: ctx.root, signal: AbortSignal.timeout(ctx.timeoutMs) });
  proc.stdin.end();
  const done = Promise.all([readAll(proc.stdout), readAll(proc.stderr), proc.wait()])
    .then(([out, err, st]) => ({ out, err, code: st.exitCode, signal: st.signal ?? null }));
  return { proc, done };
}

async function finish<T>(p: { proc: PodProcess; done: Promise<T> }, what: string, ctx: Ctx): Promise<T> {
  return withTimeout(p.done, ctx.timeoutMs, what, () => p.proc.kill('SIGKILL'));
}

function failed(what: string, r: { out: string; err: string; code: number | null; signal: string | null }): Error {
  return new Error(`${what} ended with ${r.signal ?? `exit code ${r.code}`}: ${(r.err || r.out).trim().slice(-300)}`);
}

/** Connects to ip:port, again every 20 ms while it is refused (the guest's server is starting). */
async function connectSoon(ip: string, port: number, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sock = connect({ host: ip, port });
    try {
      await once(sock, 'connect');
      return sock;
    } catch (err) {
      sock.destroy();
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ECONNREFUSED' && code !== 'ECONNRESET') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** This process → pod A: connect → the count `wc -c` sends back after the half-close (ms). */
async function hostToGuest(p: PodPair, bytes: number, ctx: Ctx): Promise<number> {
  const port = ctx.nextPort();
  const server = await start(p.a, ['nc', '-l', '-p', String(port), '-e', 'wc', '-c'], ctx);
  try {
    const sock = await connectSoon(p.ipA, port, ctx.timeoutMs);
    const t0 = performance.now();
    let reply = '';
    let t1 = 0;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => { reply += d; t1 = performance.now(); });
    const closed = once(sock, 'close');
    for (let sent = 0; sent < bytes; sent += CHUNK.length) {
      if (!sock.write(CHUNK.subarray(0, Math.min(CHUNK.length, bytes - sent)))) await once(sock, 'drain');
    }
    sock.end();
    await withTimeout(closed, ctx.timeoutMs, `host → ${p.a}: the count`, () => { sock.destroy(); });
    const count = parseWcCount(reply);
    if (count !== bytes) throw new Error(`host → ${p.a}: the guest counted ${count} bytes, ${bytes} were sent`);
    const r = await finish(server, `nc -l in ${p.a}`, ctx);
    if (r.code !== 0) throw failed(`nc -l -e wc -c in ${p.a}`, r);
    return t1 - t0;
  } finally {
    await server.proc.kill('SIGKILL').catch(() => {});
  }
}

/** Pod A → this process: accept → the sender's EOF (ms). */
async function guestToHost(p: PodPair, bytes: number, ctx: Ctx): Promise<number> {
  const port = ctx.nextPort();
  const server: Server = createServer();
  let t0 = 0, t1 = 0, count = 0, conns = 0;
  const received = new Promise<void>((resolve, reject) => {
    server.on('connection', (sock) => {
      conns++;
      t0 = performance.now();
      sock.on('data', (d: Buffer) => { count += d.length; });
      sock.on('end', () => { t1 = performance.now(); resolve(); });
      sock.on('error', reject);
    });
  });
  server.listen(port, ctx.gateway);
  await once(server, 'listening');
  let client: Awaited<ReturnType<typeof start>> | undefined;
  try {
    client = await start(p.a, ['sh', '-c', `dd if=/dev/zero bs=${DD_BLOCK} count=${bytes / DD_BLOCK} 2>/dev/null | nc ${ctx.gateway} ${port}`], ctx);
    const c = client;
    // A client that ends before sending everything (e.g. refused) shows up as its exit.
    await withTimeout(Promise.race([received, c.done.then((r) => { if (conns === 0) throw failed(`dd | nc in ${p.a}`, r); return received; })]),
      ctx.timeoutMs, `${p.a} → host`, () => c.proc.kill('SIGKILL'));
    const r = await finish(c, `dd | nc in ${p.a}`, ctx);
    if (r.code !== 0) throw failed(`dd | nc in ${p.a}`, r);
    if (count !== bytes) throw new Error(`${p.a} → host: received ${count} bytes, ${bytes} were sent`);
    return t1 - t0;
  } finally {
    if (client) await client.proc.kill('SIGKILL').catch(() => {});
    server.close();
  }
}

/** Pod A → pod B, timed in A by the guest's clock (ms). */
async function guestToGuest(p: PodPair, bytes: number, ctx: Ctx): Promise<number> {
  const port = ctx.nextPort();
  const server = await start(p.b, ['nc', '-l', '-p', String(port), '-e', 'wc', '-c'], ctx);
  try {
    const client = await start(p.a, ['sh', '-c', guestClientScript(p.ipB, port, bytes)], ctx);
    const r = await finish(client, `the client in ${p.a}`, ctx);
    if (r.code !== 0) throw failed(`the client in ${p.a}`, r);
    const t = parseGuestTransfer(r.out);
    if (t.count !== bytes) throw new Error(`${p.a} → ${p.b}: the server counted ${t.count} bytes, ${bytes} were sent`);
    const s = await finish(server, `nc -l in ${p.b}`, ctx);
    if (s.code !== 0) throw failed(`nc -l -e wc -c in ${p.b}`, s);
    return t.ms;
  } finally {
    await server.proc.kill('SIGKILL').catch(() => {});
  }
}

/** `n` round trips of 1 byte with pod A's `nc -l -e cat`, on one connection (ms each). */
async function roundTrips(p: PodPair, n: number, ctx: Ctx): Promise<number[]> {
  const port = ctx.nextPort();
  const server = await start(p.a, ['nc', '-l', '-p', String(port), '-e', 'cat'], ctx);
  const one = Buffer.from('x');
  try {
    const sock = await connectSoon(p.ipA, port, ctx.timeoutMs);
    sock.setNoDelay(true);
    const times: number[] = [];
    let waiting: (() => void) | null = null;
    sock.on('data', (d: Buffer) => {
      // One byte out, one byte back: a reply never holds more than the byte in flight.
      if (d.length !== 1 || !waiting) { sock.destroy(new Error(`unexpected ${d.length} bytes from the echo server`)); return; }
      const w = waiting;
      waiting = null;
      w();
    });
    const broken = new Promise<never>((_, reject) => {
      sock.on('error', reject);
      sock.on('close', () => reject(new Error(`${p.a}: the echo connection closed`)));
    });
    broken.catch(() => {});
    for (let i = 0; i < n; i++) {
      const back = new Promise<void>((resolve) => { waiting = resolve; });
      const t0 = performance.now();
      sock.write(one);
      await withTimeout(Promise.race([back, broken]), ctx.timeoutMs, `round trip ${i + 1} with ${p.a}`, () => { sock.destroy(); });
      times.push(performance.now() - t0);
    }
    sock.end();
    await finish(server, `nc -l -e cat in ${p.a}`, ctx);
    return times;
  } finally {
    await server.proc.kill('SIGKILL').catch(() => {});
  }
}

/** `ping -A -c n` from pod A to pod B. */
async function pingPods(p: PodPair, n: number, ctx: Ctx): Promise<{ times: number[]; sent: number; received: number }> {
  const c = await start(p.a, ['ping', '-A', '-c', String(n), '-W', '10', p.ipB], ctx);
  const r = await finish(c, `ping in ${p.a}`, ctx);
  const parsed = parsePing(r.out);
  if (parsed.received === 0) throw failed(`ping ${p.ipB} in ${p.a}`, r);
  return parsed;
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string, onTimeout: () => Promise<unknown> | void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void Promise.resolve().then(onTimeout).catch(() => {});
      reject(new Error(`${what}: no result within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function round3(v: number): number {
  return round(v, 3);
}

function ms(v: number): string {
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(2)} ms`;
}

function mib(bytes: number): string {
  return `${round(bytes / (1 << 20), 1)} MiB`;
}
