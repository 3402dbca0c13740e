import { spawn } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { processTree, pssKiB, treePssKiB } from '../../../bench/lib/proc-tree.js';
import { parseTemplatesInsideArgs, parseTemplatesReport, templatesInsideArgv } from '../../../bench/templates-format.js';
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

test.run();
