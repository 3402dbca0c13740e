// Turns the C++ VMM unit tests into uvu tests: `vmm-unit-tests FILTER` prints `ok NAME` or
// `FAIL NAME: what` per test (native/vmm/tests/main.cc); each becomes one uvu test here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const unitTestsBinary = join(repoRoot, 'build/Release/vmm-unit-tests');

/** Registers one uvu test per C++ test whose name contains `filter`, plus the exit-code check. */
export function registerCppTests(filter: string): void {
  if (!existsSync(unitTestsBinary)) {
    test('vmm-unit-tests is built', () => assert.unreachable(`${unitTestsBinary} is missing; run npm run build:native`));
    return;
  }
  const run = spawnSync(unitTestsBinary, [filter], { encoding: 'utf8', timeout: 120_000 });
  const results = new Map<string, string[]>();
  for (const line of (run.stdout ?? '').split('\n')) {
    const ok = /^ok (\S+)$/.exec(line);
    const fail = /^FAIL (\S+): (.*)$/.exec(line);
    if (ok?.[1]) {
      if (!results.has(ok[1])) results.set(ok[1], []);
    } else if (fail?.[1]) {
      results.set(fail[1], [...(results.get(fail[1]) ?? []), fail[2] ?? '']);
    } else if (line.startsWith('SKIP ')) {
      console.log(line); // scripts/test.js counts these
    } else if (line.startsWith('# ')) {
      console.log(`  ${line}`);
    }
  }
  test(`vmm-unit-tests ${filter} reports results and exits 0 exactly when none failed`, () => {
    assert.ok(results.size > 0, `no ok/FAIL lines (exit ${run.status}, ${run.error ?? ''}): ${run.stderr}`);
    const failed = [...results.values()].some((f) => f.length > 0);
    assert.is(run.status, failed ? 1 : 0, run.stderr);
  });
  for (const [name, failures] of results) test(`C++ ${name}`, () => assert.ok(failures.length === 0, failures.join('\n')));
}
