// The bounded libFuzzer runs in `npm test`: a script (scripts/fuzz-*.sh) builds a directory's
// `*_fuzzer.cc` targets with the sanitizers and runs each for SECONDS over its committed seeds,
// printing "== NAME (Ns)" … "== NAME: ok|FAILED". These tests read that output per target: no crash
// or sanitizer report, at least MIN_RUNS inputs (a harness that stalls is a bug too), and they
// print each target's runs per second and libFuzzer's coverage (`cov`, edges; `ft`, features).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const SECONDS = 3;
const MIN_RUNS = 1000;

export interface FuzzSuite {
  /** The script that builds and runs the targets, e.g. scripts/fuzz-vmm.sh. */
  script: string;
  /** Where the targets and their `corpus/<target>/` seeds are, e.g. native/vmm/fuzz. */
  dir: string;
  /** Targets that must exist, and what they cover (the first test's name). */
  expected: string[];
  covers: string;
}

/** Runs the script once (the first build may take a minute) and registers the suite's tests. */
export function fuzzTests(suite: FuzzSuite): void {
  const targets = readdirSync(join(root, suite.dir))
    .filter((f) => f.endsWith('_fuzzer.cc'))
    .map((f) => f.slice(0, -'.cc'.length))
    .sort();
  const run = spawnSync('bash', [join(root, suite.script), String(SECONDS)], { cwd: root, encoding: 'utf8', timeout: 600_000 });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`;
  const section = (name: string): string => {
    const start = output.indexOf(`== ${name} (`);
    if (start < 0) return '';
    const end = output.indexOf(`== ${name}:`, start);
    return output.slice(start, end < 0 ? undefined : output.indexOf('\n', end) + 1 || undefined);
  };

  test(`there are fuzzers for ${suite.covers}`, () => {
    for (const name of suite.expected) assert.ok(targets.includes(name), `${name} missing from ${targets.join(', ')}`);
  });

  for (const name of targets) {
    test(`${name} runs ≥ ${MIN_RUNS} inputs in ${SECONDS}s without a crash`, () => {
      const text = section(name);
      assert.ok(text, `no section for ${name} in ${suite.script}'s output (exit ${run.status}):\n${output}`);
      assert.not.match(text, /ERROR: (AddressSanitizer|libFuzzer|UndefinedBehaviorSanitizer)|runtime error|deadly signal/, text);
      const done = /Done (\d+) runs in (\d+) second/.exec(text);
      assert.ok(done, `no "Done N runs" line:\n${text}`);
      const runs = Number(done?.[1]);
      const secs = Math.max(1, Number(done?.[2]));
      // "#N DONE cov: C ft: F corp: …": what the seeds and this run reached.
      const cov = /DONE\s+cov: (\d+) ft: (\d+)/.exec(text);
      console.log(`  ${name}: ${runs} runs in ${secs} s (${Math.round(runs / secs)}/s), cov ${cov?.[1] ?? '?'}, ft ${cov?.[2] ?? '?'}`);
      assert.ok(runs >= MIN_RUNS, `only ${runs} runs`);
      assert.ok(cov, `no "DONE cov: … ft: …" line:\n${text}`);
      assert.match(text, `== ${name}: ok`);
    });
  }

  test(`${suite.script} exits 0`, () => {
    assert.is(run.status, 0, output);
  });

  test('the committed seeds stay few, and there are some for each fuzzer', () => {
    for (const name of targets) {
      const files = readdirSync(join(root, suite.dir, 'corpus', name));
      assert.ok(files.length > 0 && files.length <= 48, `${name}: ${files.length} seed files`);
    }
  });
}
