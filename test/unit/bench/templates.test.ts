import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { processTree, pssKiB, treePssKiB } from '../../../bench/lib/proc-tree.js';
import { parseTemplatesInsideArgs, parseTemplatesReport, partsP50, renderTemplatesMarkdown, startParts, templatesInsideArgv, templatesSection } from '../../../bench/templates-format.js';
import { benchJsonLine } from '../../../bench/lib/bench-json.js';

test('templates-inside argv: round trip, defaults, and each bad value named', () => {
  assert.equal(parseTemplatesInsideArgs(templatesInsideArgv({ pods: 4, memoryMiB: 128 })), { pods: 4, memoryMiB: 128 });
  assert.equal(parseTemplatesInsideArgs([]), { pods: 10, memoryMiB: 256 });
  assert.throws(() => parseTemplatesInsideArgs(['--pods', '0']), /--pods: expected a positive integer, got "0"/);
  assert.throws(() => parseTemplatesInsideArgs(['--memory-mib']), /--memory-mib: expected a positive integer, got undefined/);
  assert.throws(() => parseTemplatesInsideArgs(['--vcpus', '2']), /unknown argument "--vcpus"/);
});

test('templates report: the BENCH-JSON line is found among progress lines; a report without result is refused', () => {
  const report = { version: 1, kernel: 'k', nestedL1: true, args: { pods: 1, memoryMiB: 64 }, result: { error: 'x' } };
  assert.equal(parseTemplatesReport(`progress\n${benchJsonLine(report)}more\n`).result, { error: 'x' });
  assert.throws(() => parseTemplatesReport(benchJsonLine({ version: 1, args: {} })), /not a templates report/);
});

test('a process tree\'s PSS covers its children: a shell and the sleep under it', async () => {
  const child = spawn('sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore' });
  try {
    let tree: number[] = [];
    for (let i = 0; i < 100 && tree.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      tree = processTree(child.pid!);
    }
    assert.is(tree[0], child.pid);
    assert.ok(tree.length >= 2, `the sleep under the shell: ${tree}`);
    const own = pssKiB(child.pid!);
    const sleepPss = pssKiB(tree[1]!);
    assert.ok(own !== null && own > 0 && sleepPss !== null && sleepPss > 0);
    assert.ok(treePssKiB(child.pid!) >= own! + sleepPss! - 64, 'the tree counts both (within what changed between reads)');
  } finally {
    const all = processTree(child.pid!);
    for (const pid of all.reverse()) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  assert.throws(() => treePssKiB(2 ** 22 + 1), /no \/proc\/4194305\/smaps_rollup/);
});

// The steps of a restored start as startPod publishes them, at made-up times (t0 = 1000).
const RESTORED = [['locked', 1001], ['template-read', 1002], ['template-checked', 1005], ['network-planned', 1010], ['starting-recorded', 1012],
  ['netns-made', 1100], ['cni-added', 1300], ['taps-made', 1400], ['network-made', 1402], ['cgroup-created', 1410], ['vmm-detached', 1600],
  ['vmm-started', 1601], ['vmm-recorded', 1603], ['agent-ready', 1800], ['agent-reseeded', 1900], ['network-configured', 2000], ['running-recorded', 2010]]
  .map(([step, at]) => ({ step: step as string, at: at as number }));

test('startParts: where a start went, from its steps; a cold one has no reseed; a missing step gives null', () => {
  assert.equal(startParts(RESTORED, 1000, 2020), { beforeVmm: 410, hostNetwork: 390, cni: 200, vmmLaunch: 190, agent: 200, reseed: 100, guestNetwork: 100, rest: 20 });
  const cold = RESTORED.filter((s) => !['template-read', 'template-checked', 'agent-reseeded'].includes(s.step));
  assert.equal(startParts(cold, 1000, 2020)!.reseed, 0);
  assert.is(startParts(cold, 1000, 2020)!.guestNetwork, 200);
  assert.is(startParts(RESTORED.filter((s) => s.step !== 'vmm-detached'), 1000, 2020), null);
});

test('partsP50 is the median of each part, and only of a complete set; the section and its markdown carry them', () => {
  const a = startParts(RESTORED, 1000, 2020)!;
  const b = { ...a, hostNetwork: 100, agent: 1000 };
  const c = { ...a, hostNetwork: 200, agent: 300 };
  assert.equal(partsP50([a, b, c], 3), { ...a, hostNetwork: 200, agent: 300 });
  assert.is(partsP50([a, null], 2), null);
  assert.is(partsP50([a], 2), null);
  assert.is(partsP50(undefined, 1), null);
  const m = { coldStartMs: [5000], warmStartMs: [2020], coldPssKiB: [1024], warmPssKiB: [512], coldParts: [{ ...a, reseed: 0 }], warmParts: [a], templateCreateMs: 1, templateBytes: 1 };
  const section = templatesSection(m, { pods: 1, memoryMiB: 256 }, 'l1', []);
  assert.equal(section.warmPartsP50Ms, a);
  assert.is(section.coldPartsP50Ms!.reseed, 0);
  const md = renderTemplatesMarkdown(section, 'L1').join('\n');
  assert.match(md, '| hostNetwork | 390 ms | 390 ms |');
  assert.match(md, '| reseed | 0 ms | 100 ms |');
});

test.run();
