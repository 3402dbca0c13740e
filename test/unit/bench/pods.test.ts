// The pure helpers of the pod benchmarks: sample spreads, the BENCH-JSON line and its parser, the
// pods-inside command line, and the assembly of measurements into the result's shape.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  agentSection, BENCH_JSON_PREFIX, builtinVsQemuKvm, insideArgv, lifecycleEntry, LineSplitter, NESTED_WHERE, parseBenchJson, parseInsideArgs, spread,
  type InsideReport,
} from '../../../bench/pods-format.js';
import type { HypervisorMeasurement } from '../../../bench/pod-measure.js';

test('spread gives nearest-rank p50, p95, p99 (measured samples), min, max and n', () => {
  const reversed = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100
  assert.equal(spread(reversed), { p50: 50, p95: 95, p99: 99, min: 1, max: 100, n: 100 });
  assert.equal(spread([30, 10, 20]), { p50: 20, p95: 30, p99: 30, min: 10, max: 30, n: 3 });
  assert.equal(spread([1.23456]), { p50: 1.23, p95: 1.23, p99: 1.23, min: 1.23, max: 1.23, n: 1 });
  const empty = spread([]);
  assert.is(empty.n, 0);
  assert.ok(Number.isNaN(empty.p50) && Number.isNaN(empty.min));
});

const report: InsideReport = {
  version: 1, kernel: '6.1.0-56-amd64', nestedL1: true,
  args: { runs: 3, execs: 30, bytes: 16, which: ['builtin'] },
  results: { builtin: { error: 'boom' } },
};

test('parseBenchJson finds the report among progress lines', () => {
  const output = `builtin: warm-up\nsome BENCH-JSON in the middle is not a report\n${BENCH_JSON_PREFIX}${JSON.stringify(report)}\r\nqemu: done\n`;
  assert.equal(parseBenchJson(output), report);
});

test('parseBenchJson takes the last report line', () => {
  const older = { ...report, kernel: 'old' };
  const output = `${BENCH_JSON_PREFIX}${JSON.stringify(older)}\n${BENCH_JSON_PREFIX}${JSON.stringify(report)}`;
  assert.is(parseBenchJson(output).kernel, '6.1.0-56-amd64');
});

test('parseBenchJson explains a missing, truncated or foreign line', () => {
  assert.throws(() => parseBenchJson('line one\nPanic: the end\n'), (e: Error) => /no BENCH-JSON line/.test(e.message) && /Panic: the end/.test(e.message));
  assert.throws(() => parseBenchJson(`${BENCH_JSON_PREFIX}{"version":1,"resu`), /not JSON/);
  assert.throws(() => parseBenchJson(`${BENCH_JSON_PREFIX}{"version":2,"results":{}}`), /version-1/);
  assert.throws(() => parseBenchJson(`${BENCH_JSON_PREFIX}{"version":1,"results":[]}`), /version-1/);
  assert.throws(() => parseBenchJson(`${BENCH_JSON_PREFIX}null`), /version-1/);
});

test('LineSplitter joins lines split across chunks', () => {
  const s = new LineSplitter();
  assert.equal(s.feed('ab'), []);
  assert.equal(s.feed('c\nde'), ['abc']);
  assert.equal(s.feed('f\n\ng'), ['def', '']);
  assert.equal(s.end(), ['g']);
  assert.equal(s.end(), []);
});

test('pods-inside arguments round-trip and are checked', () => {
  const args = { runs: 7, execs: 200, bytes: 64 << 20, which: ['builtin' as const, 'qemuKvm' as const] };
  assert.equal(parseInsideArgs(insideArgv(args)), args);
  assert.equal(parseInsideArgs(['qemuTcg']), { runs: 3, execs: 30, bytes: 64 << 20, which: ['qemuTcg'] });
  assert.throws(() => parseInsideArgs([]), /at least one/);
  assert.throws(() => parseInsideArgs(['--runs', '0', 'builtin']), /positive integer/);
  assert.throws(() => parseInsideArgs(['--runs', '1.5', 'builtin']), /positive integer/);
  assert.throws(() => parseInsideArgs(['builtin', '--execs']), /positive integer/);
  assert.throws(() => parseInsideArgs(['firecracker']), /unknown argument "firecracker"/);
});

function measured(which: 'builtin' | 'qemuKvm', startMs: number[]): HypervisorMeasurement {
  const n = startMs.length;
  return {
    which, hypervisor: which === 'builtin' ? 'kvm' : 'qemu', accel: which === 'builtin' ? null : 'kvm',
    lifecycleMs: {
      create: Array(n).fill(10), startToReady: startMs, enterTrue: Array(n).fill(5), stop: Array(n).fill(20), delete: Array(n).fill(1),
      total: startMs.map((s) => s + 36),
    },
    agent: {
      channel: 'x', execRoundTripMs: { p50: 2, p95: 3, p99: 4, min: 1, max: 5, n: 30 },
      stdoutBytes: 16, stdoutMs: 1, stdoutMBps: 100, stdinBytes: 16, stdinMs: 2, stdinMBps: 50,
    },
  };
}

test('lifecycle entries, the ratio and the agent section keep errors in place', () => {
  const builtin = lifecycleEntry(measured('builtin', [100, 300, 200]), NESTED_WHERE);
  assert.is(builtin.runs, 3);
  assert.is(builtin.where, NESTED_WHERE);
  assert.equal((builtin.stepsMs as Record<string, unknown>).startToReady, { p50: 200, p95: 300 });
  assert.equal((builtin.stepsMs as Record<string, unknown>).total, { p50: 236, p95: 336 });
  const qemu = lifecycleEntry(measured('qemuKvm', [400, 400, 400]), NESTED_WHERE);
  assert.equal(builtinVsQemuKvm(builtin, qemu), { startToReadyRatio: 0.5, totalRatio: 0.541 });

  const failed = lifecycleEntry({ error: 'nested L1: L1_TIMEOUT' }, NESTED_WHERE);
  assert.equal(failed, { error: 'nested L1: L1_TIMEOUT' });
  assert.ok('error' in builtinVsQemuKvm(builtin, failed));
  assert.equal(lifecycleEntry({ ...measured('builtin', [1]), lifecycleMs: { error: 'run 1: x' } }, 'host'), { error: 'run 1: x' });

  const agent = agentSection({
    builtin: measured('builtin', [1]),
    qemuKvm: { ...measured('qemuKvm', [1]), agent: { error: 'EXEC_FAILED' } },
    qemuTcg: { error: 'no qemu' },
  });
  assert.equal(agent.execRoundTripP50Ms, { builtin: 2, qemuKvm: { error: 'EXEC_FAILED' }, qemuTcg: { error: 'no qemu' } });
  assert.equal(agent.execRoundTripP99Ms, { builtin: 4, qemuKvm: { error: 'EXEC_FAILED' }, qemuTcg: { error: 'no qemu' } });
  assert.equal(agent.stdoutMBps, { builtin: 100, qemuKvm: { error: 'EXEC_FAILED' }, qemuTcg: { error: 'no qemu' } });
  assert.equal(agent.stdinMBps, { builtin: 50, qemuKvm: { error: 'EXEC_FAILED' }, qemuTcg: { error: 'no qemu' } });
  // Results from before per-run samples: the one figure is the sample, the breakdown not measured.
  assert.equal(agent.stdinSamplesMBps, { builtin: [50], qemuKvm: { error: 'EXEC_FAILED' }, qemuTcg: { error: 'no qemu' } });
  assert.equal((agent.execBreakdown as Record<string, unknown>).builtin, { error: 'not measured' });
});

test('the agent section passes every run\'s samples and exec breakdown through', () => {
  const breakdown = {
    execs: 15,
    stepsP50Ms: { hostState: 1, channel: 20, execRequest: 30, exit: 40, total: 91 },
    cpuPerExecMs: { hostClient: 5, vmmProcess: 50, guest: 40, vmmOwn: 10 },
  };
  const m = measured('builtin', [1]);
  const agent = agentSection({
    builtin: { ...m, agent: { ...(m.agent as object), stdinSamplesMBps: [40, 50, 60], stdoutSamplesMBps: [90, 100, 110], execBreakdown: [breakdown] } as HypervisorMeasurement['agent'] },
  });
  assert.equal((agent.stdinSamplesMBps as Record<string, unknown>).builtin, [40, 50, 60]);
  assert.equal((agent.stdoutSamplesMBps as Record<string, unknown>).builtin, [90, 100, 110]);
  assert.equal((agent.execBreakdown as Record<string, unknown>).builtin, [breakdown]);
});

test.run();
