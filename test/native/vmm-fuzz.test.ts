// The VMM's fuzzers (virtqueue chain walker; vsock packets and connection state machine; virtio-net
// rx/tx paths with a scripted backend, rate limiter and resets) build
// with clang and run for a short, bounded time over their committed corpus without a crash:
// scripts/fuzz-vmm.sh does the work, this test reads libFuzzer's `Done N runs` line per fuzzer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SECONDS = 3;
// A few thousand executions in 3 s is far below what either fuzzer manages (≈ 20 000/s and
// ≈ 3 000/s with sanitizers); fewer means the harness stalls, which is a bug too.
const MIN_RUNS = 1000;
const FUZZERS = readdirSync(join(root, 'native/vmm/fuzz'))
  .filter((f) => f.endsWith('_fuzzer.cc'))
  .map((f) => f.slice(0, -'.cc'.length))
  .sort();

const run = spawnSync('bash', [join(root, 'scripts/fuzz-vmm.sh'), String(SECONDS)], {
  cwd: root, encoding: 'utf8', timeout: 600_000,
});
const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;

// "== NAME (3s)" opens a fuzzer's section; "== NAME: ok" / "== NAME: FAILED …" closes it.
function section(name: string): string {
  const start = output.indexOf(`== ${name} (`);
  if (start < 0) return '';
  const end = output.indexOf(`== ${name}:`, start);
  return output.slice(start, end < 0 ? undefined : output.indexOf('\n', end) + 1 || undefined);
}

test('there are fuzzers for the virtqueue, vsock and net paths', () => {
  assert.ok(FUZZERS.includes('virtqueue_fuzzer'), FUZZERS.join(', '));
  assert.ok(FUZZERS.includes('vsock_fuzzer'), FUZZERS.join(', '));
  assert.ok(FUZZERS.includes('net_fuzzer'), FUZZERS.join(', '));
});

for (const name of FUZZERS) {
  test(`${name} runs ≥ ${MIN_RUNS} inputs in ${SECONDS}s without a crash`, () => {
    const text = section(name);
    assert.ok(text, `no section for ${name} in fuzz-vmm.sh output (exit ${run.status}):\n${output}`);
    assert.not.match(text, /ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|deadly signal/, text);
    const done = /Done (\d+) runs in (\d+) second/.exec(text);
    assert.ok(done, `no "Done N runs" line:\n${text}`);
    const runs = Number(done?.[1]);
    console.log(`  ${name}: ${runs} runs in ${done?.[2]} s`);
    assert.ok(runs >= MIN_RUNS, `only ${runs} runs`);
    assert.match(text, `== ${name}: ok`);
  });
}

test('fuzz-vmm.sh exits 0', () => {
  assert.is(run.status, 0, output);
});

test('the committed corpus stays small', () => {
  for (const name of FUZZERS) {
    const files = readdirSync(join(root, 'native/vmm/fuzz/corpus', name));
    assert.ok(files.length > 0 && files.length <= 48, `${name}: ${files.length} corpus files`);
  }
});

test.run();
