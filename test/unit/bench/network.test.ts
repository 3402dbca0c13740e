// The pure parts of the network benchmark (bench/network-format.ts): network-inside's command line
// and report, the parsers of what busybox prints in the guest (wc -c, adjtimex, ping, the NIC and
// TCP counters), the guest-to-guest client's script, and the assembly into the results' section
// with its ratios, Markdown table and SVG panels.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { benchJsonLine } from '../../../bench/lib/bench-json.js';
import {
  COUNT_MARK, counterDelta, guestClientScript, mibPerSecond, networkInsideArgv, networkPanels, networkSection, parseAdjtimexStamps,
  parseGuestCounters, parseGuestTransfer, parseNetworkInsideArgs, parseNetworkReport, parsePing, parseRetransSegs, parseTcpExt, parseWcCount, renderNetworkMarkdown,
  skippedNetwork, transferCounters, type GuestCounters, type HostCounters, type NetMeasurement, type NetworkInsideReport, type Transfer,
} from '../../../bench/network-format.js';
import { networkPlan, OWN_NETNS } from '../../../bench/network.js';
import { renderMarkdown, renderSvg, resultPanels } from '../../../bench/lib/report.js';
import { computeTargets } from '../../../bench/lib/targets.js';
import { sampleResults } from './fixture.js';
import { parseArgs } from '../../../bench/run.js';

test('network-inside arguments round-trip and are checked', () => {
  const args = { runs: 7, bytes: 64 << 20, roundTrips: 1000, pings: 200, which: ['builtin' as const, 'qemu' as const] };
  assert.equal(parseNetworkInsideArgs(networkInsideArgv(args)), args);
  assert.equal(parseNetworkInsideArgs(['qemu']), { runs: 3, bytes: 16 << 20, roundTrips: 200, pings: 50, which: ['qemu'] });
  assert.equal(parseNetworkInsideArgs(['qemu', 'qemu', 'builtin']).which, ['qemu', 'builtin']);
  assert.throws(() => parseNetworkInsideArgs([]), /at least one/);
  assert.throws(() => parseNetworkInsideArgs(['--runs', '0', 'qemu']), /positive integer/);
  assert.throws(() => parseNetworkInsideArgs(['qemu', '--pings']), /positive integer/);
  assert.throws(() => parseNetworkInsideArgs(['--bytes', '1000', 'qemu']), /multiple of 65536/);
  assert.throws(() => parseNetworkInsideArgs(['firecracker']), /unknown argument "firecracker"/);
});

test('the plans: quick is small, full is more of everything, L0 with real KVM moves more data', () => {
  const quick = networkPlan(false, 'l1'), full = networkPlan(true, 'l1'), l0 = networkPlan(false, 'l0');
  assert.equal(quick.which, ['builtin', 'qemu']);
  for (const k of ['runs', 'bytes', 'roundTrips', 'pings'] as const) assert.ok(full[k] > quick[k], k);
  assert.ok(l0.bytes > quick.bytes);
  for (const p of [quick, full, l0, networkPlan(true, 'l0')]) assert.equal(parseNetworkInsideArgs(networkInsideArgv(p)), p);
});

test('npm run bench -- --only network selects the section alone', () => {
  assert.equal(parseArgs(['--only', 'network'], '/r').only, ['network']);
  assert.equal(parseArgs(['--only=pods,network'], '/r').only, ['pods', 'network']);
  assert.throws(() => parseArgs(['--only'], '/r'), /vmm, memory, density, pods, templates, network/);
});

test('the inside script runs under a network namespace of its own with lo up', () => {
  assert.equal(OWN_NETNS.slice(0, 3), ['unshare', '--net', '--']);
  assert.match(OWN_NETNS.at(-1)!, /ip link set lo up && exec "\$0" "\$@"/);
});

test('parseWcCount reads busybox wc -c, padded or not', () => {
  assert.is(parseWcCount('16777216\n'), 16777216);
  assert.is(parseWcCount('   42 '), 42);
  assert.throws(() => parseWcCount(''), /not a count/);
  assert.throws(() => parseWcCount('42 -'), /not a count/);
});

const ADJTIMEX = (sec: number, usec: number) => `    mode:         0
-o  offset:       0 us
-f  freq.adjust:  0 (65536 = 1ppm)
    status:       64 (UNSYNC)
-t  tick:         10000 us
    time.tv_sec:  ${sec}
    time.tv_usec: ${usec}
    return value: 5 (clock not synchronized)
`;

test('parseAdjtimexStamps: the time of each busybox adjtimex, in ms', () => {
  assert.equal(parseAdjtimexStamps(ADJTIMEX(1796560665, 135946) + ADJTIMEX(1796560667, 5)), [1796560665135.946, 1796560667000.005]);
  assert.equal(parseAdjtimexStamps('nothing'), []);
  assert.throws(() => parseAdjtimexStamps('time.tv_sec: 1\ntime.tv_sec: 2\n'), /without tv_usec/);
  assert.throws(() => parseAdjtimexStamps('time.tv_usec: 1\n'), /without tv_sec/);
  assert.throws(() => parseAdjtimexStamps('time.tv_sec: 1\n'), /without tv_usec/);
});

test('parseGuestTransfer takes the attempt that got a count: its two stamps and the count', () => {
  const refused = `${ADJTIMEX(100, 0)}${ADJTIMEX(100, 2000)}${COUNT_MARK} \n`;
  const ok = `${ADJTIMEX(101, 500000)}${ADJTIMEX(103, 750000)}${COUNT_MARK} 4194304\n`;
  assert.equal(parseGuestTransfer(ok), { ms: 2250, count: 4194304, attempts: 1 });
  assert.equal(parseGuestTransfer(refused + refused + ok), { ms: 2250, count: 4194304, attempts: 3 });
  assert.throws(() => parseGuestTransfer(refused), /no attempt got a count/);
  assert.throws(() => parseGuestTransfer(''), /no attempt got a count/);
  assert.throws(() => parseGuestTransfer(`${ADJTIMEX(1, 0)}${COUNT_MARK} 5\n`), /1 time stamps/);
  assert.throws(() => parseGuestTransfer(`${ADJTIMEX(2, 0)}${ADJTIMEX(1, 0)}${COUNT_MARK} 5\n`), /clock went back/);
  assert.throws(() => parseGuestTransfer(`${ADJTIMEX(1, 0)}${ADJTIMEX(2, 0)}${COUNT_MARK} five\n`), /not a count/);
});

test('guestClientScript is valid sh that stamps, sends and retries while refused', () => {
  const script = guestClientScript('10.231.0.3', 7101, 4 << 20);
  assert.match(script, /dd if=\/dev\/zero bs=65536 count=64 2>\/dev\/null \| nc 10\.231\.0\.3 7101/);
  assert.is(script.match(/adjtimex/g)!.length, 2);
  assert.is(spawnSync('sh', ['-n', '-c', script]).status, 0);
  assert.throws(() => guestClientScript('x', 1, 1000), /multiple of 65536/);
  // Run against stand-ins: adjtimex prints a clock, nc a count only on the third try.
  const stubs = 'adjtimex() { echo "    time.tv_sec:  7"; echo "    time.tv_usec: 0"; }\n' +
    'tries=0\nnc() { cat >/dev/null; tries=$((tries+1)); echo $tries >> "$T"; [ $(wc -l < "$T") -ge 3 ] && echo 4194304; }\nsleep() { :; }\n';
  const tmp = spawnSync('mktemp', { encoding: 'utf8' }).stdout.trim();
  const r = spawnSync('sh', ['-c', stubs + script], { encoding: 'utf8', env: { ...process.env, T: tmp } });
  spawnSync('rm', ['-f', tmp]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(parseGuestTransfer(r.stdout), { ms: 0, count: 4194304, attempts: 3 });
});

test('parsePing reads each reply and the summary of busybox ping', () => {
  const out = `PING 10.231.0.3 (10.231.0.3): 56 data bytes
64 bytes from 10.231.0.3: seq=0 ttl=64 time=17.702 ms
64 bytes from 10.231.0.3: seq=1 ttl=64 time=0.512 ms
64 bytes from 10.231.0.3: seq=3 ttl=64 time=1.000 ms

--- 10.231.0.3 ping statistics ---
4 packets transmitted, 3 packets received, 25% packet loss
round-trip min/avg/max = 0.512/6.404/17.702 ms
`;
  assert.equal(parsePing(out), { times: [17.702, 0.512, 1], sent: 4, received: 3 });
  assert.throws(() => parsePing('ping: sendto: Network unreachable\n'), /no ping summary/);
});

const COUNTERS = (tx: number, irq: number, retrans: number) => `eth0 ${tx} ${tx * 1000} 20 ${20 * 66} ${tx / 10}
 51:        ${irq}          3   IO-APIC  21-fasteoi   virtio2
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 2 0 0 0 1 30 40 ${retrans} 0 0 0
`;

test('parseGuestCounters reads eth0, the NIC\'s interrupts (all vCPUs) and TCP retransmissions; counterDelta subtracts', () => {
  const a = parseGuestCounters(COUNTERS(10, 100, 1));
  assert.equal(a, { txPackets: 10, txBytes: 10000, rxPackets: 20, rxBytes: 1320, rxDropped: 1, irqs: 103, retransSegs: 1 });
  const b = parseGuestCounters(COUNTERS(50, 180, 4));
  assert.equal(counterDelta(a, b), { txPackets: 40, txBytes: 40000, rxPackets: 0, rxBytes: 0, rxDropped: 4, irqs: 80, retransSegs: 3 });
  assert.throws(() => parseGuestCounters('nothing'), /no eth0 counters/);
  assert.throws(() => parseGuestCounters('eth0 1 2 3 4 0\n'), /no virtio interrupt line/);
  assert.throws(() => parseGuestCounters('eth0 1 2 3 4 0\n 5: 1 IO-APIC 5-edge virtio0\nTcp: A B\nTcp: 1 2\n'), /RetransSegs/);
});

test('the bench side\'s TCP counters: RetransSegs from snmp, TcpExt by name from netstat', () => {
  assert.is(parseRetransSegs('Ip: Forwarding\nIp: 1\nTcp: RtoMin RetransSegs InErrs\nTcp: 200 17 0\n'), 17);
  assert.throws(() => parseRetransSegs('Tcp: RtoMin\nTcp: 200\n'), /RetransSegs/);
  const netstat = 'TcpExt: SyncookiesSent TCPLossProbes TCPTimeouts\nTcpExt: 0 5 2\nIpExt: InNoRoutes\nIpExt: 0\n';
  assert.equal(parseTcpExt(netstat, ['TCPTimeouts', 'TCPLossProbes']), { TCPTimeouts: 2, TCPLossProbes: 5 });
  assert.throws(() => parseTcpExt(netstat, ['TCPFastRetrans']), /no TcpExt TCPFastRetrans/);
  assert.throws(() => parseTcpExt('', ['x']), /no TcpExt lines/);
});

test('mibPerSecond', () => {
  assert.is(mibPerSecond(16 << 20, 2000), 8);
  assert.ok(Number.isNaN(mibPerSecond(1, 0)));
});

function measurement(which: 'builtin' | 'qemu', msPerRound: number[], rtt: number[], ping: number[]): NetMeasurement {
  const t = (ms: number, i: number): Transfer => ({
    round: i + 1, bytes: 4 << 20, ms,
    receiver: { txPackets: 10, txBytes: 660, rxPackets: 40 * (i + 1), rxBytes: 4 << 20, rxDropped: 0, irqs: 8, retransSegs: 0 },
    sender: { txPackets: 40, txBytes: 4 << 20, rxPackets: 10, rxBytes: 660, rxDropped: 0, irqs: 4, retransSegs: which === 'qemu' ? 1 : 0 },
  });
  return {
    which, hypervisor: which === 'builtin' ? 'kvm' : 'qemu', accel: which === 'builtin' ? null : 'kvm', nic: `${which} nic`,
    transfers: { hostToGuest: msPerRound.map(t), guestToHost: msPerRound.map((ms, i) => t(ms * 2, i)), guestToGuest: msPerRound.slice(1).map((ms, i) => t(ms, i + 1)) },
    roundTripsMs: rtt, pingMs: ping, pingSent: ping.length + 1, pingReceived: ping.length, guestClock: 'kvm-clock',
    failures: which === 'qemu' ? ['round 1 guestToGuest: boom'] : [],
  };
}

function report(): NetworkInsideReport {
  return {
    version: 1, kernel: '6.1.0-57-amd64', nestedL1: true, roundsDone: 3, gateway: '10.231.0.1',
    args: { runs: 3, bytes: 4 << 20, roundTrips: 4, pings: 3, which: ['builtin', 'qemu'] },
    results: {
      builtin: measurement('builtin', [1000, 500, 2000], [1, 2, 3, 40], [0.5, 0.6, 0.7]),
      qemu: measurement('qemu', [2000, 1000, 1000], [2, 2, 4, 5], [1, 1.2, 9]),
    },
  };
}

test('parseNetworkReport takes the last report and rejects others', () => {
  const r = report();
  const older = { ...r, roundsDone: 1 };
  assert.equal(parseNetworkReport(`[x] progress\n${benchJsonLine(older)}round 2\n${benchJsonLine(r)}`), r);
  assert.throws(() => parseNetworkReport(benchJsonLine({ version: 1, results: {} })), /not a network report/);
  assert.throws(() => parseNetworkReport('no report'), /no BENCH-JSON line/);
});

test('networkSection: medians in MiB/s, ratios built-in ÷ QEMU overall and per round, latency spreads', () => {
  const s = networkSection(report(), 'l1');
  assert.is(s.where, 'l1');
  assert.is(s.runs, 3);
  const h2g = s.throughputMiBps!.hostToGuest;
  // 4 MiB in 1, 0.5, 2 s = 4, 8, 2 MiB/s; QEMU 2, 4, 4.
  assert.equal(h2g.builtin, { samples: [4, 8, 2], median: 4, min: 2, max: 8, n: 3 });
  assert.equal(h2g.qemu!.samples, [2, 4, 4]);
  assert.is(h2g.builtinVsQemu, 1);
  assert.equal(h2g.roundRatios, [2, 2, 0.5]);
  assert.is(s.throughputMiBps!.guestToHost.builtin!.median, 2);
  // Rounds are paired by number: round 1 is missing from both here.
  assert.equal(s.throughputMiBps!.guestToGuest.roundRatios, [2, 0.5]);
  // Round trips: QEMU p50 ÷ built-in p50 (≥ 1: the built-in VMM is at least as quick).
  assert.equal([s.tcpRoundTripMs!.builtin!.p50, s.tcpRoundTripMs!.builtin!.p99, s.tcpRoundTripMs!.qemu!.p50], [2, 40, 2]);
  assert.is(s.tcpRoundTripMs!.builtinVsQemu, 1);
  assert.is(s.pingMs!.builtinVsQemu, 2);
  assert.equal(s.hypervisors.qemu, { hypervisor: 'qemu', accel: 'kvm', nic: 'qemu nic', guestClock: 'kvm-clock', failures: ['round 1 guestToGuest: boom'] });
});

test('transferCounters: the data-carrying guest\'s frames, interrupts of the guests, the sender\'s retransmissions, every drop', () => {
  const g = (o: Partial<GuestCounters>): GuestCounters => ({ txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, rxDropped: 0, irqs: 0, retransSegs: 0, ...o });
  const host = (retransSegs: number): HostCounters => ({ retransSegs, lossProbes: 0, rtoTimeouts: 0, fastRetrans: 0, vmmDropped: 1, tapTxDropped: 2, tapRxDropped: 0 });
  const h2g: Transfer[] = [
    { round: 1, bytes: 2 << 20, ms: 1, receiver: g({ rxPackets: 100, rxBytes: 2 << 20, irqs: 40, rxDropped: 1 }), host: host(3) },
    { round: 2, bytes: 2 << 20, ms: 1, receiver: g({ rxPackets: 300, rxBytes: 2 << 20, irqs: 20 }), host: host(0) },
    { round: 3, bytes: 2 << 20, ms: 1, receiver: null, host: null },
  ];
  const c = transferCounters('hostToGuest', h2g)!;
  // Per MiB: 50 and 150 frames (nearest-rank median: 50), 20 and 10 irqs; frame sizes 20972 and 6991 B.
  assert.equal(c, { n: 2, framesPerMiB: 50, frameBytes: 6991, irqsPerMiB: 10, retransmitted: 3, dropped: 1 + 3 + 3 });
  const g2g: Transfer[] = [{ round: 1, bytes: 1 << 20, ms: 1, sender: g({ txPackets: 64, txBytes: 1 << 20, irqs: 5, retransSegs: 2 }), receiver: g({ rxPackets: 64, irqs: 7 }) }];
  assert.equal(transferCounters('guestToGuest', g2g), { n: 1, framesPerMiB: 64, frameBytes: 16384, irqsPerMiB: 12, retransmitted: 2, dropped: 0 });
  assert.is(transferCounters('guestToHost', [{ round: 1, bytes: 1, ms: 1 }]), null);
});

test('networkSection: a failed hypervisor leaves its figures and the ratios empty', () => {
  const r = report();
  r.results.qemu = { error: 'pods: HYPERVISOR_FAILED' };
  const s = networkSection(r, 'l1');
  assert.equal(s.hypervisors.qemu, { error: 'pods: HYPERVISOR_FAILED' });
  assert.is(s.throughputMiBps!.hostToGuest.qemu, null);
  assert.is(s.throughputMiBps!.hostToGuest.builtinVsQemu, null);
  assert.equal(s.throughputMiBps!.hostToGuest.roundRatios, []);
  assert.is(s.tcpRoundTripMs!.qemu, null);
  assert.is(s.tcpRoundTripMs!.builtinVsQemu, null);
  assert.match(renderNetworkMarkdown(s, 'Ran in L1.').join('\n'), /QEMU: failed \(pods: HYPERVISOR_FAILED\)/);
});

test('renderNetworkMarkdown: a row per direction and latency, ratios with their verdict, failures and notes', () => {
  const s = networkSection(report(), 'l1');
  s.l1 = { kernel: '6.1.0-57-amd64', bootSeconds: 9.5, totalSeconds: 300 };
  s.notes.push('a | note');
  const md = renderNetworkMarkdown(s, 'Ran in **L1**.').join('\n');
  assert.match(md, /^## Network/);
  assert.match(md, /Ran in \*\*L1\*\*\./);
  assert.match(md, /3 rounds, 4\.00 MiB per transfer, 4 TCP round trips and 3 pings per round/);
  assert.match(md, /\| TCP host → guest, MiB\/s median \(min–max\) \| 4\.00 \(2\.00–8\.00\) \| 4\.00 \(2\.00–4\.00\) \| \*\*1\.00×\*\* \(built-in ≥ QEMU\) \| 2\.00, 2\.00, 0\.50 \|/);
  assert.match(md, /\| TCP guest → host, MiB\/s median \(min–max\) \| 2\.00 .*\| \*\*1\.00×\*\* \(built-in ≥ QEMU\)/);
  assert.match(md, /\| TCP round trip host ↔ guest, 1 byte each way, ms p50 \/ p99 \| 2\.00 \/ 40\.0 \| 2\.00 \/ 5\.00 \| \*\*1\.00×\*\*/);
  assert.match(md, /\| ICMP echo guest → guest \(ping -A\), ms p50 \/ p99 \| 0\.60 \/ 0\.70 \| 1\.20 \/ 9\.00 \| \*\*2\.00×\*\*/);
  assert.match(md, /QEMU: 1 measurement\(s\) failed: round 1 guestToGuest: boom/);
  assert.match(md, /\| direction \| hypervisor \| frames \/ MiB \| bytes \/ frame \| NIC irqs \/ MiB \| retransmitted \| dropped \|/);
  // host → guest: the receiver's rx frames (40, 80, 120 per 4 MiB), 8 + 4 irqs per 4 MiB.
  assert.match(md, /\| host → guest \| built-in \| 20\.0 \| 52429 \| 3\.00 \| 0 \| 0 \|/);
  assert.match(md, /\| guest ↔ guest \| QEMU \(kvm\) \| 10\.0 \| 104858 \| 3\.00 \| 2 \| 0 \|/);
  assert.match(md, /QEMU \(kvm\): qemu nic, guest clocksource kvm-clock/);
  assert.match(md, /L1: Linux 6\.1\.0-57-amd64, booted in 9\.50 s/);
  assert.match(md, /- a \\\| note/);
  const low = networkSection(report(), 'l1');
  low.throughputMiBps!.guestToHost.builtinVsQemu = 0.5;
  assert.match(renderNetworkMarkdown(low, '').join('\n'), /\*\*0\.50×\*\* \(built-in < QEMU\)/);
  assert.match(renderNetworkMarkdown(skippedNetwork({ skipped: 'not selected (--only)' }, null), 'Did not run.').join('\n'), /Skipped: not selected \(--only\)/);
});

test('networkPanels: throughput bars per direction and hypervisor, round-trip bars; none when skipped', () => {
  const panels = networkPanels(networkSection(report(), 'l1'));
  assert.is(panels.length, 2);
  assert.is(panels[0]!.bars.length, 6);
  assert.equal(panels[0]!.bars.slice(0, 2).map((b) => [b.label, b.value, b.whisker]), [['host → guest, built-in', 4, 8], ['host → guest, QEMU (kvm)', 4, 4]]);
  assert.is(panels[1]!.bars.length, 4);
  assert.match(panels[0]!.title, /in L1/);
  assert.equal(networkPanels(skippedNetwork({ error: 'x' }, 'l1')), []);
});

test('targets: built-in ≥ QEMU per direction and for the round trip, judged as ratios; undecided without the section', () => {
  const r = sampleResults();
  assert.is(r.targets.netHostToGuestVsQemu.met, null);
  assert.is(r.targets.netRoundTripVsQemu.measured, null);
  assert.match(r.targets.netRoundTripVsQemu.basis, /the network section did not run/);
  r.network = networkSection(report(), 'l1');
  r.network.throughputMiBps!.guestToHost.builtinVsQemu = 0.8;
  const t = computeTargets(r);
  assert.equal([t.netHostToGuestVsQemu.measured, t.netHostToGuestVsQemu.met, t.netHostToGuestVsQemu.judgedBy], [1, true, 'ratio']);
  assert.match(t.netHostToGuestVsQemu.basis, /side by side in L1/);
  assert.is(t.netHostToGuestVsQemu.note, 'per round: 2, 2, 0.5');
  assert.equal([t.netGuestToHostVsQemu.met, t.netGuestToHostVsQemu.missedBy, t.netGuestToHostVsQemu.missedFactor], [false, 0.2, 1.25]);
  assert.equal([t.netRoundTripVsQemu.measured, t.netRoundTripVsQemu.met], [1, true]);
  assert.is(computeTargets({ ...r, network: skippedNetwork({ skipped: 'not selected (--only)' }, null) }).netGuestToGuestVsQemu.met, null);
});

test('latest.md and latest.svg carry the network section', () => {
  const r = sampleResults();
  r.network = networkSection(report(), 'l1');
  r.targets = computeTargets(r);
  const md = renderMarkdown(r);
  assert.match(md, /## Network \(TCP throughput and round trips, built-in vs QEMU\)\n\nRan in \*\*L1\*\*/);
  assert.match(md, /`netHostToGuestVsQemu`\) \| 1\.00 × \| >= 1 × \| \*\*met\*\*/);
  assert.match(md, /`netGuestToGuestVsQemu`\) \| 0\.50 × \| >= 1 × \| \*\*missed\*\* \| 0\.50 × \(2\.00× off\)/);
  const svg = renderSvg(resultPanels(r), 'c');
  assert.ok(svg.includes('TCP throughput (median, whisker to the best run), in L1'));
  assert.ok(svg.includes('host → guest, QEMU (kvm)'));
  // Results from before the section (schema 2) still render.
  delete r.network;
  assert.not.match(renderMarkdown(r), /## Network/);
});

test.run();
