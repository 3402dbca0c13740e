// The ratio targets of issue 18 (bench/lib/targets.ts): the agent's figures built-in ÷ QEMU-KVM
// from the pods section, the in-process start ÷ the KVM floor, the pod templates' warm ÷ cold
// (not measured until templates exist) — their directions, and null whenever a figure is missing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BenchResults } from '../../../bench/lib/results.js';
import { computeTargets, evaluateTarget, templateTargets, TARGETS, TEMPLATES_NOT_BUILT } from '../../../bench/lib/targets.js';
import { renderMarkdown } from '../../../bench/lib/report.js';
import { sampleResults } from './fixture.js';

const withAgent = (agent: Record<string, unknown>): BenchResults => {
  const r = sampleResults();
  r.agent = agent as BenchResults['agent'];
  r.targets = computeTargets(r);
  return r;
};

test('agent targets: built-in ÷ QEMU-KVM per figure, round trip ≤ 1, throughputs ≥ 1; QEMU-TCG is not the comparator', () => {
  const t = sampleResults().targets;
  const rt = t.agentExecRoundTripVsQemu, out = t.agentStdoutVsQemu, inn = t.agentStdinVsQemu;
  // Round trip 1.5 ms ÷ 2 ms: faster than QEMU, met (a smaller ratio is better).
  assert.equal([rt.op, rt.target, rt.measured, rt.met, rt.missedBy], ['<=', 1, 0.75, true, 0]);
  assert.is(rt.note, '1.5 ms ÷ 2 ms');
  // stdout 300 ÷ 200 MB/s met; stdin 100 ÷ 400 MB/s missed by 0.75, 4× off (a larger ratio is better).
  assert.equal([out.op, out.measured, out.met], ['>=', 1.5, true]);
  assert.equal([inn.op, inn.measured, inn.met, inn.missedBy, inn.missedFactor], ['>=', 0.25, false, 0.75, 4]);
  assert.is(inn.note, '100 MB/s ÷ 400 MB/s');
  for (const x of [rt, out, inn]) {
    assert.is(x.judgedBy, 'ratio');
    assert.match(x.basis, /the built-in VMM's ÷ QEMU-KVM's, both measured in L1 in the same run, judged as stated/);
  }
});

test('agent targets: the same figures the other way round flip each verdict', () => {
  const t = withAgent({
    where: 'l0',
    execRoundTripP50Ms: { builtin: 3, qemuKvm: 2 },
    stdoutMBps: { builtin: 100, qemuKvm: 200 },
    stdinMBps: { builtin: 400, qemuKvm: 100 },
  }).targets;
  assert.equal([t.agentExecRoundTripVsQemu.measured, t.agentExecRoundTripVsQemu.met, t.agentExecRoundTripVsQemu.missedFactor], [1.5, false, 1.5]);
  assert.equal([t.agentStdoutVsQemu.measured, t.agentStdoutVsQemu.met, t.agentStdoutVsQemu.missedFactor], [0.5, false, 2]);
  assert.equal([t.agentStdinVsQemu.measured, t.agentStdinVsQemu.met], [4, true]);
  assert.match(t.agentStdinVsQemu.basis, /both measured in L0/);
  // Equal figures meet both kinds of target.
  const eq = withAgent({ where: 'l1', execRoundTripP50Ms: { builtin: 2, qemuKvm: 2 }, stdoutMBps: { builtin: 5, qemuKvm: 5 }, stdinMBps: { builtin: 5, qemuKvm: 5 } }).targets;
  assert.equal([eq.agentExecRoundTripVsQemu.met, eq.agentStdoutVsQemu.met, eq.agentStdinVsQemu.met], [true, true, true]);
  // A built-in throughput of 0 is a miss, not an undecided target.
  assert.is(withAgent({ where: 'l1', stdoutMBps: { builtin: 0, qemuKvm: 5 } }).targets.agentStdoutVsQemu.met, false);
});

test('agent targets are not measured (null, never a verdict) when a hypervisor failed or the pods section did not run', () => {
  const failed = withAgent({
    where: 'l1',
    execRoundTripP50Ms: { builtin: 80, qemuKvm: { error: 'nested L1: no output for 6 min' } },
    stdoutMBps: { builtin: { error: 'agent: connection reset' }, qemuKvm: 2 },
    stdinMBps: { builtin: 2 },
  }).targets;
  assert.equal([failed.agentExecRoundTripVsQemu.measured, failed.agentExecRoundTripVsQemu.met, failed.agentExecRoundTripVsQemu.missedBy], [null, null, null]);
  assert.match(failed.agentExecRoundTripVsQemu.basis, /QEMU-KVM: nested L1: no output for 6 min$/);
  assert.match(failed.agentStdoutVsQemu.basis, /built-in: agent: connection reset$/);
  assert.match(failed.agentStdinVsQemu.basis, /QEMU-KVM: not measured$/);
  assert.is(failed.agentStdinVsQemu.met, null);

  for (const agent of [
    { skipped: 'not selected (--only)', where: null, execRoundTripP50Ms: null },
    { error: 'boom', where: null, execRoundTripP50Ms: null, stdoutMBps: { builtin: 1, qemuKvm: 1 } },
  ]) {
    const t = withAgent(agent).targets;
    for (const id of ['agentExecRoundTripVsQemu', 'agentStdoutVsQemu', 'agentStdinVsQemu'] as const) {
      assert.equal([t[id].measured, t[id].met], [null, null], id);
      assert.match(t[id].basis, /the pods section did not run/);
    }
  }
});

test('template targets: not measured, with a note saying templates are not built yet — never a figure', () => {
  const t = sampleResults().targets;
  for (const id of ['templateStartVsColdBoot', 'templatePssVsColdBoot'] as const) {
    assert.equal([t[id].measured, t[id].met, t[id].missedBy, t[id].missedFactor], [null, null, null, null], id);
    assert.is(t[id].note, TEMPLATES_NOT_BUILT);
    assert.match(t[id].note!, /not built yet/);
    assert.is(t[id].judgedBy, 'ratio');
  }
  assert.equal([t.templateStartVsColdBoot.op, t.templateStartVsColdBoot.target], ['<=', 0.05]);
  assert.equal([t.templatePssVsColdBoot.op, t.templatePssVsColdBoot.target], ['<=', 0.25]);
  const md = renderMarkdown(sampleResults());
  assert.match(md, /`templatePssVsColdBoot`\) \| — \| <= 0\.25 × \| not measured \| pod templates/);
});

test('template targets, once a section passes its ratios: warm ÷ cold, smaller is better', () => {
  const t = templateTargets({ startVsColdBoot: 0.04, pssVsColdBoot: 0.5 });
  assert.equal([t.templateStartVsColdBoot.met, t.templateStartVsColdBoot.note], [true, undefined]);
  assert.equal([t.templatePssVsColdBoot.met, t.templatePssVsColdBoot.missedFactor], [false, 2]);
  assert.is(templateTargets({ startVsColdBoot: null, pssVsColdBoot: 0.1 }).templateStartVsColdBoot.met, null);
});

test('speedupVsQemu: judged through the pre-forked launcher where the run measured it, the spawned figure in its note', () => {
  const r = sampleResults();
  const spawned = r.vmmStart.speedupVsQemu;
  assert.is(computeTargets(r).speedupVsQemu.measured, spawned, 'no launcher figure: the spawned one');
  r.vmmStart = { ...r.vmmStart, speedupVsQemuLauncher: 24.5 };
  const t = computeTargets(r).speedupVsQemu;
  assert.equal([t.measured, t.met], [24.5, true]);
  assert.match(t.note!, new RegExp(`through its pre-forked launcher \\(vc-vmm launcher\\); spawned per VM: ${spawned}×`));
  r.vmmStart = { ...r.vmmStart, speedupVsQemuLauncher: null };
  assert.is(computeTargets(r).speedupVsQemu.measured, spawned, 'a launcher that measured nothing: the spawned figure');
});

test('inprocessVsKvmFloor: ≤ 1.25 of the same run\'s floor; null without an in-process figure or when the section did not run', () => {
  const r = sampleResults();
  r.vmmStart = { ...r.vmmStart, builtinInprocessMs: { ...r.vmmStart.builtinInprocessMs!, median: 0.75 } };
  // 0.75 ms ÷ 0.6 ms = 1.25: on the line, met.
  assert.equal([computeTargets(r).inprocessVsKvmFloor.measured, computeTargets(r).inprocessVsKvmFloor.met], [1.25, true]);
  r.vmmStart = { ...r.vmmStart, builtinInprocessMs: { ...r.vmmStart.builtinInprocessMs!, median: 0.76 } };
  assert.is(computeTargets(r).inprocessVsKvmFloor.met, false);
  r.vmmStart = { ...r.vmmStart, builtinInprocessMs: null };
  assert.match(computeTargets(r).inprocessVsKvmFloor.basis, /no in-process start measured/);
  assert.is(computeTargets(r).inprocessVsKvmFloor.met, null);
  const skipped = sampleResults();
  skipped.vmmStart = { ...skipped.vmmStart, skipped: 'not selected (--only)' };
  assert.equal([computeTargets(skipped).inprocessVsKvmFloor.measured, computeTargets(skipped).inprocessVsKvmFloor.met], [null, null]);
  assert.match(computeTargets(skipped).inprocessVsKvmFloor.basis, /the start section did not run/);
});

test('every target in TARGETS is computed, and each ratio target\'s direction is as the issue states', () => {
  const t = sampleResults().targets;
  assert.equal(Object.keys(t).sort(), Object.keys(TARGETS).sort());
  const want: Record<string, [string, number]> = {
    agentExecRoundTripVsQemu: ['<=', 1], agentStdoutVsQemu: ['>=', 1], agentStdinVsQemu: ['>=', 1],
    templateStartVsColdBoot: ['<=', 0.05], templatePssVsColdBoot: ['<=', 0.25], inprocessVsKvmFloor: ['<=', 1.25], speedupVsQemu: ['>=', 20],
  };
  for (const [id, [op, target]] of Object.entries(want)) assert.equal([t[id as keyof typeof t].op, t[id as keyof typeof t].target], [op, target], id);
  // The spec alone: a ratio on the limit is met either way.
  assert.is(evaluateTarget(TARGETS.agentStdinVsQemu, 1).met, true);
  assert.is(evaluateTarget(TARGETS.agentExecRoundTripVsQemu, 1).met, true);
});

test.run();
