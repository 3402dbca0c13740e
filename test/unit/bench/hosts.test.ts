// The pure parts of running the bench's host sections (vmm, memory, density) inside the nested
// harness's L1: the plan's counts and what it scales, the hosts-inside command line and report,
// the BENCH-JSON line, targets judged from ratios for sections that ran in L1, and the writers
// saying where each section ran.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostsInsideArgv, parseHostsInsideArgs, parseHostsReport } from '../../../bench/hosts-format.js';
import { benchJsonLine, parseBenchJsonLine } from '../../../bench/lib/bench-json.js';
import { describeScaling, hostPlan } from '../../../bench/lib/plan.js';
import { renderMarkdown, renderSvg, resultPanels, whereText } from '../../../bench/lib/report.js';
import type { BenchResults } from '../../../bench/lib/results.js';
import { computeTargets, floorMultipleTarget, REFERENCE_FLOOR, roundSig, TARGETS } from '../../../bench/lib/targets.js';
import { sampleResults } from './fixture.js';

// ---- the plan ----

test('hostPlan at L0: the counts bench/README.md states, nothing scaled', () => {
  const quick = hostPlan(false, 'l0');
  assert.equal([quick.startRuns, quick.floorIterations, quick.rateVms, quick.rateRuns, quick.maxVms], [20, 50, 100, 3, 1000]);
  assert.equal(quick.memoryCounts, { builtin: [1, 10, 100], qemu: [1, 10] });
  assert.is(quick.timeoutScale, 1);
  assert.is(quick.l1MemoryMiB, null);
  assert.equal(quick.scaled, []);
  const full = hostPlan(true, 'l0');
  assert.equal([full.startRuns, full.rateVms, full.maxVms], [60, 200, 2500]);
  assert.equal(full.memoryCounts.qemu, [1, 10, 100]);
});

test('hostPlan in L1: the same counts as at L0, longer waits, L1\'s own memory floor, each difference named', () => {
  for (const full of [false, true]) {
    const l0 = hostPlan(full, 'l0'), l1 = hostPlan(full, 'l1');
    assert.is(l1.where, 'l1');
    assert.equal([l1.startRuns, l1.floorIterations, l1.memoryCounts, l1.rateRuns], [l0.startRuns, l0.floorIterations, l0.memoryCounts, l0.rateRuns]);
    assert.ok(l1.timeoutScale > 1);
    assert.ok(l1.memFloorMiB < l1.l1MemoryMiB!, 'the memory floor fits inside L1');
    assert.equal(l1.scaled, describeScaling(l0, l1));
    assert.ok(l1.scaled.includes(`MemAvailable kept free, MiB: ${l1.memFloorMiB} (L0: 3072)`));
    assert.ok(l1.scaled.includes(`time limits, × L0: ${l1.timeoutScale} (L0: 1)`));
  }
  // Quick mode holds fewer VMs at once in L1 (time), and says so; --full keeps L0's limit.
  assert.is(hostPlan(false, 'l1').maxVms, 500);
  assert.ok(hostPlan(false, 'l1').scaled.includes('most VMs held at once, limit: 500 (L0: 1000)'));
  assert.ok(hostPlan(false, 'l1').scaled.includes('VMs/s, VMs at once: 50 (L0: 100)'));
  assert.equal([hostPlan(true, 'l1').maxVms, hostPlan(true, 'l1').rateVms], [hostPlan(true, 'l0').maxVms, hostPlan(true, 'l0').rateVms]);
  // --full in L1 gets the memory for QEMU × 100 and 2500 idle VMs.
  assert.ok(hostPlan(true, 'l1').l1MemoryMiB! > hostPlan(false, 'l1').l1MemoryMiB!);
});

test('describeScaling names lists and numbers that differ', () => {
  const a = hostPlan(false, 'l0');
  const b = { ...a, memoryCounts: { builtin: [1, 10], qemu: [1] }, maxBatch: 7 };
  assert.equal(describeScaling(a, b), ['memory, built-in VM counts: 1/10 (L0: 1/10/100)', 'memory, QEMU VM counts: 1 (L0: 1/10)']);
});

// ---- hosts-inside's command line and report ----

test('hosts-inside arguments round-trip and are checked', () => {
  const args = { full: true, sections: ['vmm' as const, 'density' as const] };
  assert.equal(hostsInsideArgv(args), ['--full', '--sections', 'vmm,density']);
  assert.equal(parseHostsInsideArgs(hostsInsideArgv(args)), args);
  assert.equal(parseHostsInsideArgs(['--sections', 'memory,memory']), { full: false, sections: ['memory'] });
  assert.throws(() => parseHostsInsideArgs([]), /at least one section/);
  assert.throws(() => parseHostsInsideArgs(['--sections']), /--sections needs/);
  assert.throws(() => parseHostsInsideArgs(['--sections', 'vmm,pods']), /unknown section "pods"/);
  assert.throws(() => parseHostsInsideArgs(['--quick']), /unknown argument "--quick"/);
});

function insideReport(): Record<string, unknown> {
  const r = sampleResults();
  const inL1 = <T extends object>(s: T) => ({ ...s, where: 'l1' });
  return { version: 1, host: { ...r.host, kvmFlavor: 'kvm_amd' }, vmmStart: inL1(r.vmmStart), memory: inL1(r.memory), density: { skipped: 'not selected (--only)', where: null }, errors: [] };
}

test('parseHostsReport takes the BENCH-JSON line among progress lines', () => {
  const report = insideReport();
  const out = `[  1.0 s] vmm start: round 1/10\n${benchJsonLine(report)}`;
  const parsed = parseHostsReport(out);
  assert.is(parsed.vmmStart.where, 'l1');
  assert.is(parsed.density.where, null);
  assert.is(parsed.host.kvmFlavor, 'kvm_amd');
});

test('parseHostsReport rejects a report without a section, a where or the errors list', () => {
  const line = (r: Record<string, unknown>) => benchJsonLine(r);
  assert.throws(() => parseHostsReport(line({ ...insideReport(), memory: undefined })), /no memory object/);
  assert.throws(() => parseHostsReport(line({ ...insideReport(), density: { where: 'host' } })), /density\.where is "host"/);
  assert.throws(() => parseHostsReport(line({ ...insideReport(), errors: {} })), /no errors list/);
  assert.throws(() => parseHostsReport(line({ ...insideReport(), host: null })), /no host object/);
  assert.throws(() => parseHostsReport('no report here\n'), /no BENCH-JSON line/);
});

test('benchJsonLine is one line that parseBenchJsonLine reads back', () => {
  const line = benchJsonLine({ version: 1, text: 'a\nb' });
  assert.is(line.split('\n').length, 2);
  assert.equal(parseBenchJsonLine(`x\r\n${line}`), { version: 1, text: 'a\nb' });
  assert.throws(() => parseBenchJsonLine(benchJsonLine({ version: 2 })), /version-1/);
});

// ---- targets where the sections ran in L1 ----

/** The sample with the host sections in L1: times 30× an L0 run's, the floor too, ratios alike. */
function l1Results(): BenchResults {
  const r = sampleResults();
  const x30 = (s: { median: number } | null) => (s ? { ...s, median: s.median * 30 } : s);
  r.vmmStart = { ...r.vmmStart, where: 'l1', builtinInprocessMs: x30(r.vmmStart.builtinInprocessMs) as never, builtinProcessMs: x30(r.vmmStart.builtinProcessMs) as never, kvmFloorMs: x30(r.vmmStart.kvmFloorMs) as never };
  r.memory = { ...r.memory, where: 'l1' };
  r.density = { ...r.density, where: 'l1', vmsPerSecond: 10 };
  r.targets = computeTargets(r);
  return r;
}

test('in L1, the in-process start is judged as a ratio to the KVM floor from the same L1, like at L0; the absolute start targets are gone', () => {
  const t = l1Results().targets;
  const inproc = t.inprocessVsKvmFloor;
  // 60 ms ÷ 18 ms: the same ratio as the L0 sample's 2 ms ÷ 0.6 ms, judged against the same 1.25.
  assert.equal([inproc.judgedBy, inproc.unit, inproc.target, inproc.measured, inproc.met], ['ratio', '×', 1.25, 3.33, false]);
  assert.equal(sampleResults().targets.inprocessVsKvmFloor.measured, inproc.measured);
  assert.match(inproc.basis, /both measured in L1 in the same run/);
  assert.match(inproc.basis, /L1 floor swings widely/);
  assert.is(inproc.note, '60 ms ÷ 18 ms');
  assert.not.ok('firstInstructionInprocessMs' in t);
  assert.not.ok('firstInstructionProcessMs' in t);
});

test('in L1, the rate is judged as wall time per VM in floors; ratios, memory and counts as stated', () => {
  const t = l1Results().targets;
  // 10 VMs/s = 100 ms per VM = 5.56 floors of 18 ms; 500 VMs/s is 2 ms per VM, in reference floors.
  assert.equal([t.vmsPerSecond.judgedBy, t.vmsPerSecond.measured, t.vmsPerSecond.target], ['floor-multiple', 5.56, roundSig(2 / REFERENCE_FLOOR.ms)]);
  assert.is(t.vmsPerSecond.met, 5.56 <= t.vmsPerSecond.target);
  assert.match(t.vmsPerSecond.note!, /10 VMs\/s in L1/);
  assert.equal([t.speedupVsQemu.judgedBy, t.speedupVsQemu.measured, t.speedupVsQemu.target], ['ratio', 10, 20]);
  assert.match(t.speedupVsQemu.basis, /side by side in L1/);
  assert.equal([t.overheadVsQemu.judgedBy, t.overheadVsQemu.met], ['ratio', true]);
  assert.equal([t.overheadPerVmMiB.judgedBy, t.overheadPerVmMiB.measured, t.overheadPerVmMiB.met], ['absolute', 1.3, true]);
  assert.match(t.overheadPerVmMiB.basis, /memory, not a time/);
  assert.is(t.maxConcurrentVms.met, null);
  assert.match(t.maxConcurrentVms.note!, /the L1 plan's/);
});

test('at L0 the targets are judged as stated', () => {
  const t = sampleResults().targets;
  assert.equal([t.inprocessVsKvmFloor.judgedBy, t.inprocessVsKvmFloor.measured], ['ratio', 3.33]);
  assert.match(t.inprocessVsKvmFloor.basis, /both measured in L0 in the same run, judged as stated$/);
  assert.equal([t.vmsPerSecond.judgedBy, t.vmsPerSecond.measured], ['absolute', 300]);
  assert.is(t.speedupVsQemu.judgedBy, 'ratio');
  assert.match(t.speedupVsQemu.basis, /side by side in L0/);
});

test('an L1 time without a floor measured in L1 is undecided, never judged against L0 milliseconds', () => {
  const r = l1Results();
  r.vmmStart.kvmFloorMs = null;
  const t = computeTargets(r);
  assert.equal([t.inprocessVsKvmFloor.met, t.inprocessVsKvmFloor.measured], [null, null]);
  assert.match(t.inprocessVsKvmFloor.basis, /no KVM floor measured in this run/);
  // The rate's floor must come from the same L1: none when the start section ran elsewhere.
  r.vmmStart.where = 'l0';
  r.vmmStart.kvmFloorMs = { n: 1, median: 0.6, p95: 0.6, min: 0.6, max: 0.6, mean: 0.6 };
  assert.is(computeTargets(r).vmsPerSecond.met, null);
  assert.is(floorMultipleTarget(TARGETS.vmsPerSecond, 5, 0, 'x').met, null);
  assert.match(floorMultipleTarget(TARGETS.vmsPerSecond, 5, 0, 'x').basis, /not measured, so undecided/);
});

// ---- the writers say where ----

test('renderMarkdown says where each section ran, that L1 times do not compare with L0, and how targets were judged', () => {
  const r = l1Results();
  r.l1 = {
    why: 'cannot open /dev/kvm | no node',
    host: { ...r.host, cpuModel: 'AMD EPYC Processor', kvmFlavor: 'kvm_amd', memoryGiB: 3.8 },
    bootSeconds: 6.1, totalSeconds: 150, scaled: ['start runs per variant: 10 (L0: 20)'],
  };
  const md = renderMarkdown(r);
  assert.match(md, /\*\*The host sections \(VMM start, memory, density\) ran in L1\*\*/);
  assert.match(md, /cannot open \/dev\/kvm \\\| no node/);
  assert.match(md, /absolute times from L1 are not comparable with L0 figures/);
  assert.match(md, /What L1's plan does differently from L0's \(bench\/lib\/plan\.ts\): start runs per variant: 10 \(L0: 20\)\./);
  assert.match(md, /A verdict in KVM floors from L1 \(the in-process start ÷ floor, VMs\/s as floors per VM\) is therefore indicative only/);
  for (const h of ['VMM start', 'Memory per VM', 'Density']) assert.match(md, new RegExp(`## ${h}\\n\\nRan in \\*\\*L1\\*\\*`));
  assert.match(md, /## Memory per VM\n\nRan in \*\*L1\*\*[^\n]*not inflated/);
  assert.match(md, /The built-in VMM and QEMU-KVM ran in \*\*L1\*\*/);
  assert.match(md, /\| target \| measured \| target \| verdict \| missed by \| judged by \|/);
  assert.match(md, /`inprocessVsKvmFloor`\) \| 3\.33 × \| <= 1\.25 × \| \*\*missed\*\* \| 2\.08 × \(2\.66× off\) 60 ms ÷ 18 ms \| ratio: /);
  assert.match(md, /`vmsPerSecond`\) \| 5\.56 × floor \| <= 13\.3 × floor \| \*\*met\*\* \|.*\| floor-multiple: L1: /);
  assert.match(md, /`templateStartVsColdBoot`\) \| — \| <= 0\.05 × \| not measured \| pod templates/);
  assert.match(md, /`speedupVsQemu`\) \| 10\.0 × \| >= 20 × \| \*\*missed\*\* \|.*\| ratio: /);
  assert.not.match(md, /L1 failed before the end/);
  r.l1.failed = 'nested L1: no output from L1 for 7 min';
  assert.match(renderMarkdown(r), /\*\*L1 failed before the end\*\* \(nested L1: no output from L1 for 7 min\): the sections it had reported are kept/);
  // The start chart marks 1.25× the floor of its own run (L0 or L1), no absolute milliseconds.
  const svg = renderSvg(resultPanels(r), 'c');
  assert.ok(svg.includes('>1.25× floor<'));
  assert.not.ok(svg.includes('>1 ms<'));
  assert.ok(renderSvg(resultPanels(sampleResults()), 'c').includes('>1.25× floor<'));
  r.vmmStart.kvmFloorMs = null;
  assert.not.ok(renderSvg(resultPanels(r), 'c').includes('× floor<'));
});

test('whereText for L0, L1 and a section that did not run', () => {
  assert.match(whereText('l0'), /\*\*L0\*\*/);
  assert.match(whereText('l1'), /\*\*L1\*\*.*do not compare with L0; compare ratios/);
  assert.match(whereText('l1', 'memory'), /not inflated by the emulation/);
  assert.is(whereText(null), 'Did not run.');
});

test.run();
