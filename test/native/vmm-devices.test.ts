// The VMM's device models (serial, i8042, virtqueues, virtio-mmio, blk, rng, vsock with its
// Unix-socket backend), unit-tested over plain memory in C++: every `ok NAME` / `FAIL NAME: …`
// line of `vmm-unit-tests dev_` becomes one uvu test here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const unitTests = join(root, 'build/Release/vmm-unit-tests');

if (!existsSync(unitTests)) {
  test('vmm-unit-tests is built', () => assert.unreachable(`${unitTests} is missing; run npm run build:native`));
} else {
  const run = spawnSync(unitTests, ['dev_'], { encoding: 'utf8', timeout: 120_000 });
  const results = new Map<string, string[]>();
  for (const line of (run.stdout ?? '').split('\n')) {
    const ok = /^ok (\S+)$/.exec(line);
    const fail = /^FAIL (\S+): (.*)$/.exec(line);
    if (ok?.[1]) {
      if (!results.has(ok[1])) results.set(ok[1], []);
    } else if (fail?.[1]) {
      const list = results.get(fail[1]) ?? [];
      list.push(fail[2] ?? '');
      results.set(fail[1], list);
    } else if (line.startsWith('# ')) {
      console.log(`  ${line}`);
    }
  }
  if (results.size === 0) {
    test('vmm-unit-tests dev_ reports results', () =>
      assert.unreachable(`no ok/FAIL lines (exit ${run.status}, ${run.error ?? ''}): ${run.stderr}`));
  }
  for (const [name, failures] of results) {
    test(`C++ ${name}`, () => assert.ok(failures.length === 0, failures.join('\n')));
  }
  test('vmm-unit-tests dev_ exits 0 exactly when no test failed', () => {
    const failed = [...results.values()].some((f) => f.length > 0);
    assert.is(run.status, failed || results.size === 0 ? 1 : 0, run.stderr);
  });
}

test.run();
