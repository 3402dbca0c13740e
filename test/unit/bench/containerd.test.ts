// The pure parts of the containerd benchmark (bench/containerd-format.ts) and its selection in
// bench/run.ts: no containerd runs here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  containerdRatios, CONTROL_RUNTIME, parseRuntimeList, renderContainerdMarkdown, shimBinaryName, skippedContainerd,
  type ContainerdSection, type RuntimeMeasurement,
} from '../../../bench/containerd-format.js';
import { parseArgs, sectionWanted } from '../../../bench/run.js';

const measurement = (runtime: string, median: number | null, rss: number | null, skipped?: string): RuntimeMeasurement => ({
  runtime, shim: shimBinaryName(runtime), ...(skipped ? { skipped } : {}),
  firstOutputMs: median === null ? null : { n: 3, median, p95: median * 2, min: median / 2, max: median * 2, mean: median },
  samplesMs: [], shimRssMiB: rss, shimProcesses: rss === null ? 0 : 1, taskRssMiB: null, taskProcesses: 0, failures: [],
});

test("shimBinaryName: containerd's rule (the last two parts), and a clear error for a name that is not one", () => {
  assert.is(shimBinaryName('io.containerd.runc.v2'), 'containerd-shim-runc-v2');
  assert.is(shimBinaryName('io.containerd.virtc.v2'), 'containerd-shim-virtc-v2');
  assert.throws(() => shimBinaryName('runc'), /runtime must be a containerd runtime name like io\.containerd\.runc\.v2, not "runc"/);
  assert.throws(() => shimBinaryName('io.containerd.runc.two'), /not "io\.containerd\.runc\.two"/);
});

test('parseRuntimeList: the control first, duplicates dropped, bad names named', () => {
  assert.equal(parseRuntimeList('io.containerd.virtc.v2, io.containerd.runc.v2,io.containerd.virtc.v2'), [CONTROL_RUNTIME, 'io.containerd.virtc.v2']);
  assert.throws(() => parseRuntimeList(' , '), /runtime list is empty/);
  assert.throws(() => parseRuntimeList('io.containerd.runc.v2,kata'), /not "kata"/);
});

test('containerdRatios: each measured runtime ÷ runc; null where a side has no figure; skipped runtimes left out', () => {
  const r = containerdRatios({
    [CONTROL_RUNTIME]: measurement(CONTROL_RUNTIME, 100, 10),
    'io.containerd.virtc.v2': measurement('io.containerd.virtc.v2', 250, 45),
    'io.containerd.other.v2': measurement('io.containerd.other.v2', null, 5),
    'io.containerd.gone.v2': measurement('io.containerd.gone.v2', null, null, 'not on PATH'),
  });
  assert.equal(r, {
    'io.containerd.virtc.v2': { firstOutput: 2.5, shimRss: 4.5 },
    'io.containerd.other.v2': { firstOutput: null, shimRss: 0.5 },
  });
  assert.equal(containerdRatios({ 'io.containerd.virtc.v2': measurement('io.containerd.virtc.v2', 10, 1) }), { 'io.containerd.virtc.v2': { firstOutput: null, shimRss: null } });
});

test('renderContainerdMarkdown: a row per runtime, the skip reason, the ratio line; a skipped section says why', () => {
  const runtimes = {
    [CONTROL_RUNTIME]: measurement(CONTROL_RUNTIME, 90, 13),
    'io.containerd.virtc.v2': measurement('io.containerd.virtc.v2', 180, 39),
  };
  const s: ContainerdSection = {
    where: 'l0', runs: 3, containerdVersion: '1.6.20~ds1', image: 'docker.io/library/vc-busybox:test', command: ['echo', 'first'],
    control: CONTROL_RUNTIME, runtimes, ratios: containerdRatios(runtimes), notes: ['a note'],
  };
  const md = renderContainerdMarkdown(s, 'here').join('\n');
  assert.match(md, /\| io\.containerd\.runc\.v2 \| containerd-shim-runc-v2 \| 90\.0 \| 180 \| 13\.0 \(1\)/);
  assert.match(md, /io\.containerd\.virtc\.v2 ÷ io\.containerd\.runc\.v2: first output \*\*2\.00×\*\*, shim RSS \*\*3\.00×\*\*/);
  assert.match(md, /- a note/);
  const skipped = { ...s, runtimes: { ...runtimes, 'io.containerd.virtc.v2': measurement('io.containerd.virtc.v2', null, null, 'containerd-shim-virtc-v2 is not on PATH') } };
  assert.match(renderContainerdMarkdown(skipped, 'here').join('\n'), /skipped: containerd-shim-virtc-v2 is not on PATH/);
  assert.match(renderContainerdMarkdown(skippedContainerd({ skipped: 'no containerd' }), 'x').join('\n'), /Skipped: no containerd/);
});

test('the containerd section runs only when selected with --only', () => {
  assert.is(sectionWanted(null, 'containerd'), false);
  assert.is(sectionWanted(null, 'vmm'), true);
  assert.is(sectionWanted(parseArgs(['--only', 'containerd'], '/r').only, 'containerd'), true);
  assert.is(sectionWanted(parseArgs(['--only', 'containerd'], '/r').only, 'network'), false);
});

test.run();
