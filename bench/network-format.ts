// The pure parts of the network benchmark (bench/network.ts): the command line of
// bench/network-inside.ts and the BENCH-JSON report it prints, the parsers of what the guest's
// busybox prints (wc -c, adjtimex, ping), and the assembly of the measurements into the results'
// `network` section (medians, ratios built-in ÷ QEMU), its Markdown table and its SVG panels.
import { parseBenchJsonLine } from './lib/bench-json.js';
import { escapeMd, fmt, type Panel } from './lib/report.js';
import type { Where } from './lib/results.js';
import { median, round } from './lib/stats.js';
import { spread, type Spread } from './pods-format.js';

/** The two hypervisors compared: the built-in VMM's virtio-net and QEMU's (tap, vhost=off). */
export type NetHypervisor = 'builtin' | 'qemu';
export const NET_HYPERVISORS: readonly NetHypervisor[] = ['builtin', 'qemu'];

export const NET_DIRECTIONS = ['hostToGuest', 'guestToHost', 'guestToGuest'] as const;
export type NetDirection = (typeof NET_DIRECTIONS)[number];

export const DIRECTION_TEXT: Record<NetDirection, string> = {
  hostToGuest: 'host → guest',
  guestToHost: 'guest → host',
  guestToGuest: 'guest ↔ guest (two pods on the bridge)',
};

/** What each hypervisor gives the guest (src/hypervisor: the pod's tap in its namespace). */
export const NIC_TEXT: Record<NetHypervisor, string> = {
  builtin: 'vc-vmm virtio-net (virtio-mmio, tap with IFF_VNET_HDR and offloads)',
  qemu: 'QEMU virtio-net-device (virtio-mmio) on -netdev tap,vhost=off',
};

// ---- network-inside's command line ----

export interface NetworkInsideArgs {
  /** Rounds; in each, every measurement once per hypervisor, the order alternating round by round. */
  runs: number;
  /** Bytes per transfer, each direction (a multiple of 64 KiB: the guest sends with dd bs=64k). */
  bytes: number;
  /** TCP request/response round trips per round (1 byte each way, one connection). */
  roundTrips: number;
  /** ICMP echo requests per round, guest → guest (ping -A). */
  pings: number;
  which: NetHypervisor[];
}

export const DD_BLOCK = 64 << 10;

/** network-inside's argv: `[--runs N] [--bytes N] [--round-trips N] [--pings N] builtin|qemu ...`. */
export function parseNetworkInsideArgs(argv: readonly string[]): NetworkInsideArgs {
  const args: NetworkInsideArgs = { runs: 3, bytes: 16 << 20, roundTrips: 200, pings: 50, which: [] };
  const keys: Record<string, 'runs' | 'bytes' | 'roundTrips' | 'pings'> = { '--runs': 'runs', '--bytes': 'bytes', '--round-trips': 'roundTrips', '--pings': 'pings' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const key = keys[a];
    if (key) {
      const raw = argv[++i];
      const v = Number(raw);
      if (raw === undefined || !/^\d+$/.test(raw) || !Number.isSafeInteger(v) || v < 1) {
        throw new Error(`${a}: expected a positive integer, got ${JSON.stringify(raw)}`);
      }
      args[key] = v;
    } else if ((NET_HYPERVISORS as readonly string[]).includes(a)) {
      if (!args.which.includes(a as NetHypervisor)) args.which.push(a as NetHypervisor);
    } else {
      throw new Error(`unknown argument ${JSON.stringify(a)} (expected --runs/--bytes/--round-trips/--pings N or one of ${NET_HYPERVISORS.join(', ')})`);
    }
  }
  if (args.bytes % DD_BLOCK !== 0) throw new Error(`--bytes: ${args.bytes} is not a multiple of ${DD_BLOCK} (the guest sends with dd bs=64k)`);
  if (args.which.length === 0) throw new Error(`name at least one of ${NET_HYPERVISORS.join(', ')}`);
  return args;
}

export function networkInsideArgv(args: NetworkInsideArgs): string[] {
  return ['--runs', String(args.runs), '--bytes', String(args.bytes), '--round-trips', String(args.roundTrips), '--pings', String(args.pings), ...args.which];
}

// ---- what network-inside reports ----

/** One timed transfer: `bytes` in `ms`, the round it belongs to (1-based), the guests' counters. */
export interface Transfer {
  round: number;
  bytes: number;
  ms: number;
  /** What the sending and the receiving guest counted during it (untimed reads before and after); none for the bench's side. */
  sender?: GuestCounters | null;
  receiver?: GuestCounters | null;
  /** The bench's side: TCP retransmissions in its namespace, and pod A's tap's drops. */
  host?: HostCounters | null;
}

export interface HostCounters {
  retransSegs: number;
  /** TcpExt (/proc/net/netstat): tail loss probes, retransmission timeouts, fast retransmits. */
  lossProbes: number;
  rtoTimeouts: number;
  fastRetrans: number;
  /** The built-in VMM's own count of frames it dropped (its control socket's status); null for QEMU. */
  vmmDropped: number | null;
  /** tap0_vc in pod A's namespace: frames the tap dropped on the way to the VMM, and from it. */
  tapTxDropped: number;
  tapRxDropped: number;
}

/** The named TcpExt counters from /proc/net/netstat text (a header line, then a values line). */
export function parseTcpExt(netstat: string, names: readonly string[]): Record<string, number> {
  const rows = netstat.split('\n').filter((l) => l.startsWith('TcpExt:')).map((l) => l.trim().split(/\s+/).slice(1));
  if (rows.length < 2) throw new Error(`no TcpExt lines in ${JSON.stringify(netstat.slice(0, 200))}`);
  const out: Record<string, number> = {};
  for (const name of names) {
    const at = rows[0]!.indexOf(name);
    if (at < 0 || !/^\d+$/.test(rows[1]![at] ?? '')) throw new Error(`no TcpExt ${name}`);
    out[name] = Number(rows[1]![at]);
  }
  return out;
}

/** TCP RetransSegs from /proc/net/snmp text. */
export function parseRetransSegs(snmp: string): number {
  const tcp = snmp.split('\n').filter((l) => l.startsWith('Tcp:')).map((l) => l.trim().split(/\s+/).slice(1));
  const at = tcp[0]?.indexOf('RetransSegs') ?? -1;
  if (tcp.length < 2 || at < 0 || !/^\d+$/.test(tcp[1]![at] ?? '')) throw new Error(`no TCP RetransSegs in ${JSON.stringify(snmp.slice(0, 300))}`);
  return Number(tcp[1]![at]);
}

export interface NetMeasurement {
  which: NetHypervisor;
  hypervisor: 'kvm' | 'qemu';
  /** What podStatus reported for the pods (QEMU: kvm or tcg; the built-in VMM: null). */
  accel: string | null;
  /** The guest's NIC. */
  nic: string;
  transfers: Record<NetDirection, Transfer[]>;
  /** Every timed TCP round trip (ms), in order. */
  roundTripsMs: number[];
  /** Every ICMP round trip guest → guest (ms) as ping printed them; sent and received per round. */
  pingMs: number[];
  pingSent: number;
  pingReceived: number;
  /** The guest kernel's clocksource (what adjtimex and ping read). */
  guestClock: string | null;
  /** Measurements that failed (the others stand). */
  failures: string[];
}

export type NetMeasured = NetMeasurement | { error: string };

export interface NetworkInsideReport {
  version: 1;
  kernel: string;
  nestedL1: boolean;
  args: NetworkInsideArgs;
  /** Rounds completed so far (a report is printed after each). */
  roundsDone: number;
  results: Partial<Record<NetHypervisor, NetMeasured>>;
  /** What the bench saw of its own namespace: the bridge's address the guests reach it on. */
  gateway: string | null;
}

/** The last report network-inside printed; throws, quoting it, unless it is one. */
export function parseNetworkReport(output: string): NetworkInsideReport {
  const r = parseBenchJsonLine(output);
  const isObj = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObj(r.results) || !isObj(r.args) || typeof r.roundsDone !== 'number') {
    throw new Error(`the BENCH-JSON line is not a network report: ${JSON.stringify(r).slice(0, 200)}`);
  }
  return r as unknown as NetworkInsideReport;
}

// ---- parsers of the guest's output ----

/** `wc -c`'s count (busybox pads it with spaces); throws on anything else. */
export function parseWcCount(text: string): number {
  const t = text.trim();
  if (!/^\d+$/.test(t)) throw new Error(`wc -c printed ${JSON.stringify(text.slice(0, 100))}, not a count`);
  return Number(t);
}

/**
 * The times in busybox `adjtimex`'s output (`time.tv_sec:  S` then `time.tv_usec: US`), in ms
 * since the epoch, in order. A tv_sec without its tv_usec is an error.
 */
export function parseAdjtimexStamps(text: string): number[] {
  const stamps: number[] = [];
  let sec: number | null = null;
  for (const line of text.split('\n')) {
    const s = /time\.tv_sec:\s*(\d+)/.exec(line);
    if (s) {
      if (sec !== null) throw new Error(`adjtimex: tv_sec ${sec} without tv_usec`);
      sec = Number(s[1]);
      continue;
    }
    const u = /time\.tv_usec:\s*(\d+)/.exec(line);
    if (u) {
      if (sec === null) throw new Error('adjtimex: tv_usec without tv_sec');
      stamps.push(sec * 1000 + Number(u[1]) / 1000);
      sec = null;
    }
  }
  if (sec !== null) throw new Error(`adjtimex: tv_sec ${sec} without tv_usec`);
  return stamps;
}

/** The marker the guest-to-guest client prints before the count its server sent back. */
export const COUNT_MARK = '@@count';

/**
 * The guest-to-guest client's script (busybox sh in pod A): stamp, send `bytes` zeros to
 * `ip:port` through nc and take the count the server (`nc -l -p PORT -e wc -c` in pod B) sends
 * back after its EOF, stamp again. A refused connection (the server not listening yet) prints an
 * empty count and tries again after 0.1 s, up to 100 times.
 */
export function guestClientScript(ip: string, port: number, bytes: number): string {
  if (bytes % DD_BLOCK !== 0) throw new Error(`bytes: ${bytes} is not a multiple of ${DD_BLOCK}`);
  return [
    'i=0',
    'while :; do',
    '  adjtimex',
    `  n=$(dd if=/dev/zero bs=${DD_BLOCK} count=${bytes / DD_BLOCK} 2>/dev/null | nc ${ip} ${port})`,
    '  adjtimex',
    `  echo "${COUNT_MARK} $n"`,
    '  [ -n "$n" ] && exit 0',
    '  i=$((i+1)); [ $i -ge 100 ] && exit 1',
    '  sleep 0.1',
    'done',
  ].join('\n');
}

/**
 * The client's output: the attempt that got a count (the last one), its duration (ms, the guest's
 * clock, stamp to stamp) and the count. Throws when no attempt got one.
 */
export function parseGuestTransfer(output: string): { ms: number; count: number; attempts: number } {
  const attempts = output.split(COUNT_MARK);
  // Each attempt: two adjtimex blocks, then the mark and its count (at the start of the next part).
  const blocks: { stamps: number[]; count: string }[] = [];
  for (let i = 0; i + 1 < attempts.length; i++) {
    const count = (attempts[i + 1]!.split('\n')[0] ?? '').trim();
    blocks.push({ stamps: parseAdjtimexStamps(attempts[i]!), count });
  }
  const last = blocks.pop();
  if (!last || last.count === '') throw new Error(`no attempt got a count back: ${JSON.stringify(output.slice(-300))}`);
  if (last.stamps.length < 2) throw new Error(`the attempt that got a count has ${last.stamps.length} time stamps, not 2`);
  const [t0, t1] = last.stamps.slice(-2) as [number, number];
  if (t1 < t0) throw new Error(`the guest's clock went back ${round(t0 - t1, 3)} ms during the transfer`);
  return { ms: round(t1 - t0, 3), count: parseWcCount(last.count), attempts: blocks.length + 1 };
}

/** A guest's NIC and TCP counters, or the difference of two readings. */
export interface GuestCounters {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  /** Frames the guest's driver dropped on receive. */
  rxDropped: number;
  /** Interrupts of the NIC's virtio device (all vCPUs). */
  irqs: number;
  /** TCP segments retransmitted (/proc/net/snmp). */
  retransSegs: number;
}

/** Reads the counters of eth0 in a guest (busybox sh); parseGuestCounters reads its output. */
export const GUEST_COUNTERS_SCRIPT = [
  'd=$(basename "$(readlink /sys/class/net/eth0/device)")',
  's=/sys/class/net/eth0/statistics',
  'echo "eth0 $(cat $s/tx_packets) $(cat $s/tx_bytes) $(cat $s/rx_packets) $(cat $s/rx_bytes) $(cat $s/rx_dropped)"',
  'grep -w "$d" /proc/interrupts',
  'grep Tcp: /proc/net/snmp',
].join('\n');

export function parseGuestCounters(text: string): GuestCounters {
  const nic = /^eth0 (\d+) (\d+) (\d+) (\d+) (\d+)$/m.exec(text);
  if (!nic) throw new Error(`no eth0 counters in ${JSON.stringify(text.slice(0, 300))}`);
  // ` 51:        317   IO-APIC  22-fasteoi   virtio2`: a count per vCPU after the number.
  const irqLine = /^\s*\d+:((?:\s+\d+)+)\s+\S.*\bvirtio\d+\s*$/m.exec(text);
  if (!irqLine) throw new Error(`no virtio interrupt line in ${JSON.stringify(text.slice(0, 300))}`);
  const irqs = irqLine[1]!.trim().split(/\s+/).reduce((a, b) => a + Number(b), 0);
  return {
    txPackets: Number(nic[1]), txBytes: Number(nic[2]), rxPackets: Number(nic[3]), rxBytes: Number(nic[4]), rxDropped: Number(nic[5]),
    irqs, retransSegs: parseRetransSegs(text),
  };
}

export function counterDelta(before: GuestCounters, after: GuestCounters): GuestCounters {
  return Object.fromEntries((Object.keys(before) as (keyof GuestCounters)[]).map((k) => [k, after[k] - before[k]])) as unknown as GuestCounters;
}

/** busybox ping's output: each reply's time (ms) and the summary's counts. */
export function parsePing(output: string): { times: number[]; sent: number; received: number } {
  const times: number[] = [];
  for (const m of output.matchAll(/bytes from [^:]+: seq=\d+ ttl=\d+ time=([\d.]+) ms/g)) times.push(Number(m[1]));
  const sum = /(\d+) packets transmitted, (\d+) packets received/.exec(output);
  if (!sum) throw new Error(`no ping summary in ${JSON.stringify(output.slice(-300))}`);
  return { times, sent: Number(sum[1]), received: Number(sum[2]) };
}

// ---- the results' section ----

export function mibPerSecond(bytes: number, ms: number): number {
  return ms > 0 ? round(bytes / (1 << 20) / (ms / 1000), 2) : Number.NaN;
}

export interface ThroughputSummary {
  /** MiB/s of each transfer, in round order. */
  samples: number[];
  median: number;
  min: number;
  max: number;
  n: number;
}

export interface DirectionFigures {
  builtin: ThroughputSummary | null;
  qemu: ThroughputSummary | null;
  /** median(built-in) ÷ median(QEMU): ≥ 1 means the built-in VMM moved data at least as fast. */
  builtinVsQemu: number | null;
  /** The same per round (the two were measured next to each other in every round). */
  roundRatios: number[];
  /** What the guests and the bench's side counted during the transfers. */
  counters: { builtin: TransferCounters | null; qemu: TransferCounters | null };
}

/**
 * The counters of a direction's transfers, from the guest that carries the data: the receiver for
 * host → guest, the sender otherwise (whose tx frames are the receiver's rx frames guest ↔ guest).
 */
export interface TransferCounters {
  /** Transfers whose counters were read. */
  n: number;
  /** Data frames (as the guest's driver counts them: a GSO frame is one) per MiB, median. */
  framesPerMiB: number;
  /** Their mean size in bytes, median over the transfers (above the MTU: GSO/TSO at work). */
  frameBytes: number;
  /** NIC interrupts per MiB in the guest(s) involved (both guest ↔ guest), median. */
  irqsPerMiB: number;
  /** TCP segments the sender retransmitted (the bench's namespace for host → guest), all transfers. */
  retransmitted: number;
  /** Frames dropped on the way (guest driver, the tap, vc-vmm), all transfers. */
  dropped: number;
}

export function transferCounters(d: NetDirection, transfers: readonly Transfer[]): TransferCounters | null {
  const rows = transfers.flatMap((t) => {
    const mib = t.bytes / (1 << 20);
    const data = d === 'hostToGuest' ? t.receiver : t.sender;
    if (!data || mib <= 0) return [];
    const frames = d === 'hostToGuest' ? data.rxPackets : data.txPackets;
    const bytes = d === 'hostToGuest' ? data.rxBytes : data.txBytes;
    const irqs = (t.sender?.irqs ?? 0) + (t.receiver?.irqs ?? 0);
    const retransmitted = d === 'hostToGuest' ? (t.host?.retransSegs ?? 0) : (t.sender?.retransSegs ?? 0);
    const dropped = (t.receiver?.rxDropped ?? 0) + (t.host ? t.host.tapTxDropped + t.host.tapRxDropped + (t.host.vmmDropped ?? 0) : 0);
    return [{ framesPerMiB: frames / mib, frameBytes: frames ? bytes / frames : 0, irqsPerMiB: irqs / mib, retransmitted, dropped }];
  });
  if (rows.length === 0) return null;
  const med = (f: (r: (typeof rows)[number]) => number) => round(median(rows.map(f)), 1);
  return {
    n: rows.length,
    framesPerMiB: med((r) => r.framesPerMiB),
    frameBytes: Math.round(median(rows.map((r) => r.frameBytes))),
    irqsPerMiB: med((r) => r.irqsPerMiB),
    retransmitted: rows.reduce((a, r) => a + r.retransmitted, 0),
    dropped: rows.reduce((a, r) => a + r.dropped, 0),
  };
}

export interface LatencyFigures {
  builtin: Spread | null;
  qemu: Spread | null;
  /** QEMU's p50 ÷ the built-in VMM's: ≥ 1 means the built-in VMM's round trip is no longer. */
  builtinVsQemu: number | null;
}

export interface NetworkSection {
  skipped?: string;
  error?: string;
  where: Where | null;
  runs: number;
  bytesPerTransfer: number;
  roundTripsPerRun: number;
  pingsPerRun: number;
  hypervisors: Partial<Record<NetHypervisor, { hypervisor: 'kvm' | 'qemu'; accel: string | null; nic: string; guestClock: string | null; failures: string[] } | { error: string }>>;
  throughputMiBps: Record<NetDirection, DirectionFigures> | null;
  /** TCP request/response, 1 byte each way on one connection, the bench's namespace ↔ a guest. */
  tcpRoundTripMs: LatencyFigures | null;
  /** ICMP echo guest → guest (busybox ping -A: the next request as soon as the reply is in). */
  pingMs: LatencyFigures | null;
  /** The L1 it ran in (null at L0). */
  /** failed: why L1 ended before the last round; rerunAfter: why an earlier L1 stopped (this is its rerun). */
  l1: { kernel: string; bootSeconds: number; totalSeconds: number; failed?: string; rerunAfter?: string } | null;
  notes: string[];
}

export function skippedNetwork(why: { skipped: string } | { error: string }, where: Where | null): NetworkSection {
  return {
    ...why, where, runs: 0, bytesPerTransfer: 0, roundTripsPerRun: 0, pingsPerRun: 0, hypervisors: {},
    throughputMiBps: null, tcpRoundTripMs: null, pingMs: null, l1: null, notes: [],
  };
}

const isErr = (v: unknown): v is { error: string } => typeof v === 'object' && v !== null && 'error' in v;

function throughput(transfers: readonly Transfer[]): ThroughputSummary | null {
  if (transfers.length === 0) return null;
  const samples = transfers.map((t) => mibPerSecond(t.bytes, t.ms));
  return { samples, median: round(median(samples), 2), min: round(Math.min(...samples), 2), max: round(Math.max(...samples), 2), n: samples.length };
}

function ratio(a: number | undefined | null, b: number | undefined | null): number | null {
  return a !== null && a !== undefined && b !== null && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? round(a / b, 3) : null;
}

/** The results' `network` section from network-inside's report (where it ran is the caller's to say). */
export function networkSection(report: NetworkInsideReport, where: Where): NetworkSection {
  const ok = (h: NetHypervisor): NetMeasurement | null => {
    const m = report.results[h];
    return m && !isErr(m) ? m : null;
  };
  const b = ok('builtin'), q = ok('qemu');
  const hypervisors: NetworkSection['hypervisors'] = {};
  for (const h of report.args.which) {
    const m = report.results[h];
    hypervisors[h] = m === undefined ? { error: 'not measured' } : isErr(m) ? { error: m.error } : { hypervisor: m.hypervisor, accel: m.accel, nic: m.nic, guestClock: m.guestClock, failures: m.failures };
  }
  const direction = (d: NetDirection): DirectionFigures => {
    const tb = b ? throughput(b.transfers[d]) : null;
    const tq = q ? throughput(q.transfers[d]) : null;
    const roundRatios: number[] = [];
    if (b && q) {
      for (const t of b.transfers[d]) {
        const other = q.transfers[d].find((x) => x.round === t.round);
        const r = other ? ratio(mibPerSecond(t.bytes, t.ms), mibPerSecond(other.bytes, other.ms)) : null;
        if (r !== null) roundRatios.push(r);
      }
    }
    return {
      builtin: tb, qemu: tq, builtinVsQemu: ratio(tb?.median, tq?.median), roundRatios,
      counters: { builtin: b ? transferCounters(d, b.transfers[d]) : null, qemu: q ? transferCounters(d, q.transfers[d]) : null },
    };
  };
  const latency = (pick: (m: NetMeasurement) => number[]): LatencyFigures => {
    const sb = b && pick(b).length ? spread(pick(b)) : null;
    const sq = q && pick(q).length ? spread(pick(q)) : null;
    return { builtin: sb, qemu: sq, builtinVsQemu: ratio(sq?.p50, sb?.p50) };
  };
  return {
    where,
    runs: report.roundsDone,
    bytesPerTransfer: report.args.bytes,
    roundTripsPerRun: report.args.roundTrips,
    pingsPerRun: report.args.pings,
    hypervisors,
    throughputMiBps: Object.fromEntries(NET_DIRECTIONS.map((d) => [d, direction(d)])) as Record<NetDirection, DirectionFigures>,
    tcpRoundTripMs: latency((m) => m.roundTripsMs),
    pingMs: latency((m) => m.pingMs),
    l1: null,
    notes: [],
  };
}

// ---- writers ----

const HV_TEXT: Record<NetHypervisor, string> = { builtin: 'built-in', qemu: 'QEMU' };

function hvLabel(s: NetworkSection, h: NetHypervisor): string {
  const e = s.hypervisors[h];
  return e && !isErr(e) && e.accel ? `${HV_TEXT[h]} (${e.accel})` : HV_TEXT[h];
}

function tput(t: ThroughputSummary | null): string {
  return t ? `${fmt(t.median)} (${fmt(t.min)}–${fmt(t.max)})` : '—';
}

function lat(l: Spread | null): string {
  return l && l.n ? `${fmt(l.p50)} / ${fmt(l.p99)}` : '—';
}

function ratioText(r: number | null, extra = ''): string {
  if (r === null) return '—';
  return `**${fmt(r)}×** ${r >= 1 ? '(built-in ≥ QEMU)' : '(built-in < QEMU)'}${extra}`;
}

/** The `## Network` part of latest.md. */
export function renderNetworkMarkdown(s: NetworkSection, whereLine: string): string[] {
  const L: string[] = ['## Network (TCP throughput and round trips, built-in vs QEMU)', '', whereLine, ''];
  if (s.skipped || s.error) {
    L.push(s.skipped ? `Skipped: ${escapeMd(s.skipped)}` : `Failed: ${escapeMd(s.error!)}`, '');
    return L;
  }
  const nics = (Object.keys(s.hypervisors) as NetHypervisor[]).map((h) => {
    const e = s.hypervisors[h]!;
    return isErr(e) ? `${HV_TEXT[h]}: failed (${escapeMd(e.error)})` : `${hvLabel(s, h)}: ${escapeMd(e.nic)}${e.guestClock ? `, guest clocksource ${escapeMd(e.guestClock)}` : ''}`;
  });
  L.push(`NICs: ${nics.join('; ')}. ${s.runs} rounds, ${fmt(s.bytesPerTransfer / (1 << 20))} MiB per transfer, ` +
    `${s.roundTripsPerRun} TCP round trips and ${s.pingsPerRun} pings per round and hypervisor; the two hypervisors take turns in every measurement, the order alternating by round.`, '');
  if (s.l1) L.push(`L1: Linux ${escapeMd(s.l1.kernel)}, booted in ${fmt(s.l1.bootSeconds)} s, ${fmt(s.l1.totalSeconds)} s in all${s.l1.failed ? `; **failed before the end** (${escapeMd(s.l1.failed)}), the rounds it reported are kept` : ''}${s.l1.rerunAfter ? `; a rerun: an earlier L1 stopped (${escapeMd(s.l1.rerunAfter)})` : ''}.`, '');
  L.push('| measurement | built-in | QEMU | built-in vs QEMU (≥ 1: built-in at least as good) | per round |', '|---|---|---|---|---|');
  if (s.throughputMiBps) {
    for (const d of NET_DIRECTIONS) {
      const f = s.throughputMiBps[d];
      L.push(`| TCP ${DIRECTION_TEXT[d]}, MiB/s median (min–max) | ${tput(f.builtin)} | ${tput(f.qemu)} | ${ratioText(f.builtinVsQemu)} | ${f.roundRatios.map((r) => fmt(r)).join(', ') || '—'} |`);
    }
  }
  if (s.tcpRoundTripMs) {
    const t = s.tcpRoundTripMs;
    L.push(`| TCP round trip host ↔ guest, 1 byte each way, ms p50 / p99 | ${lat(t.builtin)} | ${lat(t.qemu)} | ${ratioText(t.builtinVsQemu, ', QEMU p50 ÷ built-in p50')} | |`);
  }
  if (s.pingMs) {
    const p = s.pingMs;
    L.push(`| ICMP echo guest → guest (ping -A), ms p50 / p99 | ${lat(p.builtin)} | ${lat(p.qemu)} | ${ratioText(p.builtinVsQemu, ', QEMU p50 ÷ built-in p50')} | |`);
  }
  L.push('');
  if (s.throughputMiBps && NET_DIRECTIONS.some((d) => s.throughputMiBps![d].counters?.builtin || s.throughputMiBps![d].counters?.qemu)) {
    L.push('What was counted during the transfers (read before and after each, untimed; medians per transfer, totals for retransmissions and drops): ' +
      'the data frames of the guest that carries the data (the receiver host → guest, the sender otherwise) per MiB and their mean size, NIC interrupts per MiB in the guest(s), ' +
      'TCP retransmissions by the sender, frames dropped by the guest\'s driver, the tap or vc-vmm.', '');
    L.push('| direction | hypervisor | frames / MiB | bytes / frame | NIC irqs / MiB | retransmitted | dropped |', '|---|---|---|---|---|---|---|');
    for (const d of NET_DIRECTIONS) {
      for (const h of NET_HYPERVISORS) {
        const c = s.throughputMiBps[d].counters?.[h];
        if (c) L.push(`| ${DIRECTION_TEXT[d].replace(/ \(.*\)$/, '')} | ${hvLabel(s, h)} | ${fmt(c.framesPerMiB)} | ${c.frameBytes} | ${fmt(c.irqsPerMiB)} | ${c.retransmitted} | ${c.dropped} |`);
      }
    }
    L.push('');
  }
  for (const h of Object.keys(s.hypervisors) as NetHypervisor[]) {
    const e = s.hypervisors[h]!;
    if (!isErr(e) && e.failures.length) L.push(`- ${HV_TEXT[h]}: ${e.failures.length} measurement(s) failed: ${e.failures.map(escapeMd).join('; ')}`);
  }
  for (const n of s.notes) L.push(`- ${escapeMd(n)}`);
  if (s.notes.length) L.push('');
  return L;
}

const BUILTIN = '#2b7bb9', QEMU = '#e08a2c';

/** Bars for latest.svg: throughput per direction and the round trips, both hypervisors. */
export function networkPanels(s: NetworkSection): Panel[] {
  if (s.skipped || s.error || !s.throughputMiBps) return [];
  const inL1 = s.where === 'l1' ? ', in L1: compare the two, not with other hosts' : '';
  const bars = NET_DIRECTIONS.flatMap((d) => NET_HYPERVISORS.map((h) => {
    const t = s.throughputMiBps![d][h];
    return { label: `${DIRECTION_TEXT[d].replace(/ \(.*\)$/, '')}, ${hvLabel(s, h)}`, value: t ? t.median : null, whisker: t ? t.max : null, color: h === 'builtin' ? BUILTIN : QEMU };
  }));
  const panels: Panel[] = [{ title: `TCP throughput (median, whisker to the best run)${inL1}`, unit: 'MiB/s', scale: 'linear', bars }];
  const lbars = (['tcpRoundTripMs', 'pingMs'] as const).flatMap((k) => NET_HYPERVISORS.map((h) => {
    const l = s[k]?.[h];
    return { label: `${k === 'tcpRoundTripMs' ? 'TCP round trip' : 'ping guest → guest'}, ${hvLabel(s, h)}`, value: l && l.n ? l.p50 : null, whisker: l && l.n ? l.p99 : null, color: h === 'builtin' ? BUILTIN : QEMU };
  }));
  panels.push({ title: `Network round trips (p50, whisker to p99)${inL1}`, unit: 'ms', scale: 'log', bars: lbars });
  return panels;
}
