// vc-holder's frame decoder under libFuzzer (scripts/fuzz-holder.sh builds it with clang, ASan and
// UBSan, and runs it for a short, bounded time over its committed seeds): no crash, no broken
// invariant (native/holder/fuzz/frame_fuzzer.cc says which), and a harness that keeps pace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SECONDS = 3;
// The decoder is a few comparisons per byte: tens of thousands of inputs a second even with the
// sanitizers; fewer than this in 3 s means the harness stalls, which is a bug too.
const MIN_RUNS = 1000;

const run = spawnSync('bash', [join(root, 'scripts/fuzz-holder.sh'), String(SECONDS)], { cwd: root, encoding: 'utf8', timeout: 300_000 });
const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;

test(`frame_fuzzer runs ≥ ${MIN_RUNS} inputs in ${SECONDS}s without a crash`, () => {
  assert.is(run.status, 0, output);
  assert.not.match(output, /ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|deadly signal/, output);
  const done = /Done (\d+) runs in (\d+) second/.exec(output);
  assert.ok(done, `no "Done N runs" line:\n${output}`);
  console.log(`  frame_fuzzer: ${done?.[1]} runs in ${done?.[2]} s`);
  assert.ok(Number(done?.[1]) >= MIN_RUNS, `only ${done?.[1]} runs`);
  assert.match(output, '== frame_fuzzer: ok');
});

test('the committed seeds stay few', () => {
  const files = readdirSync(join(root, 'native/holder/fuzz/corpus/frame_fuzzer'));
  assert.ok(files.length > 0 && files.length <= 48, `${files.length} seed files`);
});

test.run();
