// The guest agent's fuzzers (native/agent/fuzz: the frame decoder, the connection layer with its
// virtio-serial sessions, the JSON parser, the requests' argument checks, a container's
// /etc/passwd and /etc/group) build with clang, ASan and UBSan and run for a short, bounded time
// over their committed seeds without a crash or a broken invariant: scripts/fuzz-agent.sh does the
// work, this test reads libFuzzer's summary lines per fuzzer and prints each one's speed and
// coverage.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SECONDS = 3;
// Each harness manages thousands of inputs a second with the sanitizers; fewer than this in 3 s
// means the harness stalls, which is a bug too.
const MIN_RUNS = 1000;
const FUZZERS = readdirSync(join(root, 'native/agent/fuzz'))
  .filter((f) => f.endsWith('_fuzzer.cc'))
  .map((f) => f.slice(0, -'.cc'.length))
  .sort();

// The first build compiles the agent's sources with the sanitizers (about a minute on 2 cores).
const run = spawnSync('bash', [join(root, 'scripts/fuzz-agent.sh'), String(SECONDS)], {
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

test('there are fuzzers for the frames, connections, JSON, request arguments and users', () => {
  for (const name of ['channel_fuzzer', 'frame_fuzzer', 'json_fuzzer', 'request_fuzzer', 'users_fuzzer']) {
    assert.ok(FUZZERS.includes(name), `${name} missing from ${FUZZERS.join(', ')}`);
  }
});

for (const name of FUZZERS) {
  test(`${name} runs ≥ ${MIN_RUNS} inputs in ${SECONDS}s without a crash`, () => {
    const text = section(name);
    assert.ok(text, `no section for ${name} in fuzz-agent.sh output (exit ${run.status}):\n${output}`);
    assert.not.match(text, /ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|deadly signal/, text);
    const done = /Done (\d+) runs in (\d+) second/.exec(text);
    assert.ok(done, `no "Done N runs" line:\n${text}`);
    const runs = Number(done?.[1]);
    const secs = Math.max(1, Number(done?.[2]));
    // "#N DONE cov: C ft: F corp: …": edges and features reached over the seeds and what was found.
    const cov = /DONE\s+cov: (\d+) ft: (\d+)/.exec(text);
    console.log(`  ${name}: ${runs} runs in ${secs} s (${Math.round(runs / secs)}/s), cov ${cov?.[1] ?? '?'}, ft ${cov?.[2] ?? '?'}`);
    assert.ok(runs >= MIN_RUNS, `only ${runs} runs`);
    assert.ok(cov, `no "DONE cov: … ft: …" line:\n${text}`);
    assert.match(text, `== ${name}: ok`);
  });
}

test('fuzz-agent.sh exits 0', () => {
  assert.is(run.status, 0, output);
});

test('the committed seeds stay few, and there are some for each fuzzer', () => {
  for (const name of FUZZERS) {
    const files = readdirSync(join(root, 'native/agent/fuzz/corpus', name));
    assert.ok(files.length > 0 && files.length <= 48, `${name}: ${files.length} seed files`);
  }
});

test.run();
