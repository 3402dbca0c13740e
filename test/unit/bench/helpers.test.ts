// The benchmarks' pure helpers (bench/lib): statistics, target evaluation, the VMM timing line,
// smaps arithmetic, the Markdown and SVG writers, argument parsing. The benchmarks themselves are
// not tests and do not run here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { percentile, median, summarize, round } from '../../../bench/lib/stats.js';
import { computeTargets, evaluateTarget, roundSig, TARGETS } from '../../../bench/lib/targets.js';
import { parseVmmParts, parseVmmTiming } from '../../../bench/lib/proc.js';
import { parseSmaps, findGuestMapping, vmmMemory, memAvailableKiB } from '../../../bench/lib/smaps.js';
import { escapeXml, fmt, renderMarkdown, renderSvg, resultPanels, resultStamp, scaleX } from '../../../bench/lib/report.js';
import { qemuArgs } from '../../../bench/lib/guests.js';
import { parseArgs } from '../../../bench/run.js';
import { sampleResults as sample } from './fixture.js';

// ---- statistics ----

test('percentile is nearest-rank: every result is a measured value', () => {
  const v = [5, 1, 4, 2, 3];
  assert.is(percentile(v, 50), 3);
  assert.is(percentile(v, 0), 1);
  assert.is(percentile(v, 100), 5);
  assert.is(percentile([1, 2, 3, 4], 50), 2);
  assert.is(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 95), 19);
  assert.is(median([10]), 10);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile([1], 101), /0\.\.100/);
});

test('summarize ignores non-finite samples and rounds', () => {
  const s = summarize([1.23456, Number.NaN, 2, Number.POSITIVE_INFINITY, 3], 2);
  assert.equal(s, { n: 3, median: 2, p95: 3, min: 1.23, max: 3, mean: 2.08 });
  assert.is(summarize([]).n, 0);
  assert.is(round(1.23456, 3), 1.235);
});

// ---- targets ----

test('a limit target: met, or missed by the gap and the factor', () => {
  const spec = { description: 'x', unit: 'ms', op: '<=' as const, target: 5 };
  const met = evaluateTarget(spec, 4);
  assert.is(met.met, true);
  assert.is(met.missedBy, 0);
  assert.is(met.missedFactor, 0.8);
  const missed = evaluateTarget(spec, 7.5);
  assert.is(missed.met, false);
  assert.is(missed.missedBy, 2.5);
  assert.is(missed.missedFactor, 1.5);
});

test('a minimum target: missed by target − measured, factor target ÷ measured', () => {
  const r = evaluateTarget(TARGETS.vmsPerSecond, 250);
  assert.is(r.met, false);
  assert.is(r.missedBy, 250);
  assert.is(r.missedFactor, 2);
  assert.is(evaluateTarget(TARGETS.vmsPerSecond, 500).met, true);
});

test('an unmeasured or inconclusive target is undecided, not missed', () => {
  for (const v of [null, undefined, Number.NaN]) {
    const r = evaluateTarget(TARGETS.maxConcurrentVms, v);
    assert.is(r.met, null);
    assert.is(r.measured, null);
  }
  const capped = evaluateTarget(TARGETS.maxConcurrentVms, 200, { inconclusive: true, note: 'capped' });
  assert.is(capped.met, null);
  assert.is(capped.measured, 200);
  assert.is(capped.note, 'capped');
  // Inconclusive only matters when it would be a miss.
  assert.is(evaluateTarget(TARGETS.maxConcurrentVms, 1200, { inconclusive: true }).met, true);
});

test('roundSig keeps three significant digits', () => {
  assert.is(roundSig(1234.5), 1230);
  assert.is(roundSig(0.012345), 0.0123);
  assert.is(roundSig(0), 0);
});

// ---- the VMM's timing line ----

test('parseVmmTiming reads vc-vmm\'s stderr line', () => {
  const t = parseVmmTiming('vc-vmm: VM stopped: guest-reset: i8042 reset line\nvc-vmm: timing: main -> VM built 3685 us -> first guest exit 4230 us (unix 1764340000.123456)\n');
  assert.equal(t, { builtUs: 3685, firstExitUs: 4230, firstExitUnixMs: 1764340000123.456 });
  assert.is(parseVmmTiming('vc-vmm: timing: main -> VM built 10 us -> first guest exit 0 us (unix 0.000000)')!.firstExitUnixMs, null);
  assert.is(parseVmmTiming('nothing here'), null);
});

test('parseVmmParts reads vc-vmm\'s per-step line, and only numbers', () => {
  const err = 'vc-vmm: VM stopped: guest-reset\nvc-vmm: timing parts (us): {"kvmOpen":12,"pit":2348,"configParse":218}\n';
  assert.equal(parseVmmParts(err), { kvmOpen: 12, pit: 2348, configParse: 218 });
  assert.is(parseVmmParts('vc-vmm: timing parts (us): {"a":"x"}'), null);
  assert.is(parseVmmParts('vc-vmm: timing parts (us): [1]'), null);
  assert.is(parseVmmParts('vc-vmm: timing parts (us): {broken'), null);
  assert.is(parseVmmParts('nothing here'), null);
});

// ---- smaps ----

const SMAPS = `55d0c0000000-55d0c0100000 r-xp 00000000 fe:00 123    /usr/bin/vc-vmm
Size:               1024 kB
Rss:                 800 kB
Pss:                 100 kB
7f0000000000-7f0008000000 rw-p 00000000 00:00 0
Size:             131072 kB
Rss:                 320 kB
Pss:                 320 kB
7f0010000000-7f0010200000 rw-p 00000000 00:00 0
Size:               2048 kB
Rss:                 200 kB
Pss:                 200 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Size:                132 kB
Rss:                  16 kB
Pss:                  16 kB
`;

test('parseSmaps reads each mapping\'s size, RSS and PSS', () => {
  const maps = parseSmaps(SMAPS);
  assert.is(maps.length, 4);
  assert.is(maps[0]!.name, '/usr/bin/vc-vmm');
  assert.is(maps[1]!.name, '');
  assert.is(maps[1]!.sizeKiB, 131072);
  assert.is(maps[3]!.name, '[stack]');
  assert.is(maps[3]!.pssKiB, 16);
});

test('the guest mapping is the anonymous one of the guest\'s size; overhead subtracts its resident part', () => {
  const maps = parseSmaps(SMAPS);
  assert.is(findGuestMapping(maps, 128)!.rssKiB, 320);
  assert.is(findGuestMapping(maps, 64), null);
  // Within 4 MiB above the size (alignment padding) when there is no exact one.
  assert.is(findGuestMapping(maps, 1)!.sizeKiB, 2048);
  const m = vmmMemory(SMAPS, 128);
  assert.equal(m, { rssKiB: 1336, pssKiB: 636, guestRssKiB: 320, guestPssKiB: 320, nonGuestRssKiB: 1016, nonGuestPssKiB: 316, guestMappingFound: true });
  assert.is(vmmMemory(SMAPS, 64).guestMappingFound, false);
  assert.is(memAvailableKiB('MemTotal: 100 kB\nMemAvailable:    4242 kB\n'), 4242);
  assert.ok(Number.isNaN(memAvailableKiB('')));
});

// ---- QEMU's command line ----

test('qemuArgs: KVM drops arch-capabilities, TCG takes the default CPU, debugcon on a socket', () => {
  const kvm = qemuArgs({ accel: 'kvm', kernel: '/k.elf', cmdline: 'vctest=hello', memoryMiB: 128, debugconSocket: '/tmp/d.sock' });
  assert.ok(kvm.join(' ').includes('-accel kvm -cpu host,-arch-capabilities -m 128'));
  assert.ok(kvm.join(' ').includes('-chardev socket,id=dbg,path=/tmp/d.sock -device isa-debugcon,iobase=0x80,chardev=dbg'));
  assert.ok(kvm.includes('-no-reboot'));
  const tcg = qemuArgs({ accel: 'tcg', kernel: '/k.elf', cmdline: 'vctest=idle', memoryMiB: 64 });
  assert.not.ok(tcg.includes('-cpu'));
  assert.not.ok(tcg.includes('isa-debugcon,iobase=0x80,chardev=dbg'));
});

// ---- writers ----

test('computeTargets: every target, a capped max-concurrency run is undecided', () => {
  const t = sample().targets;
  assert.equal(Object.keys(t).sort(), Object.keys(TARGETS).sort());
  // 2 ms in-process ÷ a 0.6 ms floor: 3.33× against ≤ 1.25×.
  assert.equal([t.inprocessVsKvmFloor.measured, t.inprocessVsKvmFloor.met, t.inprocessVsKvmFloor.missedBy, t.inprocessVsKvmFloor.missedFactor], [3.33, false, 2.08, 2.66]);
  assert.not.ok('firstInstructionInprocessMs' in t);
  assert.not.ok('firstInstructionProcessMs' in t);
  assert.is(t.speedupVsQemu.met, false);
  assert.is(t.overheadPerVmMiB.met, true);
  assert.is(t.overheadVsQemu.met, true);
  assert.is(t.vmsPerSecond.missedBy, 200);
  assert.is(t.maxConcurrentVms.met, null);
  assert.match(t.maxConcurrentVms.note!, /limit of 200/);
});

test('renderMarkdown: start, memory, density, pods, targets and the published anchors', () => {
  const md = renderMarkdown(sample());
  assert.match(md, /^# Benchmark results — 2025-01-02T03:04:05.000Z \(quick\)/);
  assert.match(md, /\| built-in, process \| 8\.00 \| 12\.0 \| 11\.0 \| 16\.5 \| 0 \|/);
  assert.match(md, /\| QEMU \(kvm\) \| 80\.0 \| 120 \| 84\.0 \| 126 \| 1 \|/);
  assert.match(md, /ran \\\| ok/); // table-breaking pipes escaped
  assert.match(md, /spawnToVmmMainMs 4\.00 \/ 6\.00/);
  assert.match(md, /\| QEMU \(kvm\) \| 10 \| 35\.0 \| 16\.0 \| 2\.00 \| 33\.0 \| 14\.0 \| 9\.00 \|/);
  assert.match(md, /VMs created per second \(median of the runs\): \*\*300\*\*/);
  assert.match(md, /\| agent\.execRoundTripP50Ms\.builtin \| 1\.50 \|/);
  assert.not.match(md, /lifecycle\.raw/); // long sample lists stay in the JSON
  assert.match(md, /\| .*`vmsPerSecond`\) \| 300 VMs\/s \| >= 500 VMs\/s \| \*\*missed\*\* \| 200 VMs\/s \(1\.67× off\)/);
  assert.match(md, /`maxConcurrentVms`\) \| 200 VMs \| >= 1000 VMs \| undecided \|/);
  assert.match(md, /## Published anchors \(published, not measured here\)/);
  assert.match(md, /\| Firecracker \| VMM memory overhead \| ≤ 5 MiB per VM \|/);
  assert.match(md, /error in x: boom/);
});

test('renderSvg: a well-formed document with escaped text, one bar per measured figure', () => {
  const r = sample();
  const svg = renderSvg(resultPanels(r), 'caption <&>');
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.ok(svg.includes('caption &lt;&amp;&gt;'));
  assert.not.ok(/<text[^>]*>[^<]*&(?!amp;|lt;|gt;|quot;)/.test(svg), 'unescaped & in text');
  // floor + 3 start variants, 3 ready, 2 memory samples, 9 measured targets (6 host, 3 agent;
  // no network section, no templates), plus the background.
  const rects = svg.match(/<rect /g)!.length;
  assert.is(rects, 1 + 4 + 3 + 2 + 9);
  assert.is((svg.match(/>not measured</g) ?? []).length, 6);
  assert.is(escapeXml('a"b'), 'a&quot;b');
});

test('scaleX: log and linear placement, clamped to the plot', () => {
  assert.is(scaleX(1, 0.1, 10, 'log'), 230);
  assert.is(scaleX(100, 0.1, 10, 'log'), 460);
  assert.is(scaleX(0, 0.1, 10, 'log'), 0);
  assert.is(scaleX(5, 0, 10, 'linear'), 230);
});

test('fmt and resultStamp', () => {
  assert.is(fmt(1234.4), '1234');
  assert.is(fmt(12.34), '12.3');
  assert.is(fmt(1.234), '1.23');
  assert.is(fmt(0.01234), '0.012');
  assert.is(fmt(null), '—');
  assert.is(fmt(3, 'ms'), '3.00 ms');
  assert.is(resultStamp(new Date(Date.UTC(2025, 0, 2, 3, 4))), '2025-01-02-0304');
});

test('parseArgs: --full, --only lists, --out, and errors naming the argument', () => {
  assert.equal(parseArgs([], '/r'), { full: false, only: null, outDir: '/r' });
  assert.equal(parseArgs(['--full', '--only', 'vmm,memory', '--only=pods', '--out', '/x'], '/r'), { full: true, only: ['vmm', 'memory', 'pods'], outDir: '/x' });
  assert.throws(() => parseArgs(['--only', 'nope'], '/r'), /unknown section "nope"/);
  assert.throws(() => parseArgs(['--fast'], '/r'), /unknown argument "--fast"/);
  assert.throws(() => parseArgs(['--only'], '/r'), /--only needs a value/);
});

test.run();
