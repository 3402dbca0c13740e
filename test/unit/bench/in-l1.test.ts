// bench/lib/in-l1.ts withRerunIfL1Stopped: a bench script whose L1 stopped on its own (silent, or
// its kernel panicked) runs once more in a fresh L1; nothing else is rerun, and never twice.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withRerunIfL1Stopped } from '../../../bench/lib/in-l1.js';

function runs<R>(...answers: (() => R)[]) {
  let calls = 0;
  return { get calls() { return calls; }, once: async () => answers[calls++]!() };
}

test('a run whose L1 did not stop is returned as it is', async () => {
  const r = runs(() => ({ report: 'a' }));
  const lines: string[] = [];
  assert.equal(await withRerunIfL1Stopped(r.once, (m) => lines.push(m)), { report: 'a' });
  assert.is(r.calls, 1);
  assert.equal(lines, []);
});

test('an L1 that stopped after a report: rerun once, the rerun\'s result with why', async () => {
  const r = runs<{ report: string; l1Stopped?: string }>(() => ({ report: 'partial', l1Stopped: "L1's kernel panicked: corrupted stack end detected inside scheduler" }), () => ({ report: 'whole' }));
  const lines: string[] = [];
  const out = await withRerunIfL1Stopped(r.once, (m) => lines.push(m));
  assert.is(r.calls, 2);
  assert.is(out.report, 'whole');
  assert.is(out.rerunAfter, "L1's kernel panicked: corrupted stack end detected inside scheduler");
  assert.match(lines[0]!, 'once more in a fresh L1');
});

test('an L1 that stopped before any report (thrown): rerun once', async () => {
  const r = runs<{ report: string }>(() => { throw Object.assign(new Error('no report'), { l1Stopped: 'no output for 6 min after "boot"' }); }, () => ({ report: 'whole' }));
  const out = await withRerunIfL1Stopped(r.once, () => {});
  assert.is(r.calls, 2);
  assert.is(out.rerunAfter, 'no output for 6 min after "boot"');
});

test('any other failure is not rerun; a second stop is not run a third time', async () => {
  const failing = runs<{ report: string }>(() => { throw new Error('inside script exited 1'); });
  const err = await withRerunIfL1Stopped(failing.once, () => {}).catch((e: Error) => e);
  assert.is((err as Error).message, 'inside script exited 1');
  assert.is(failing.calls, 1);
  const twice = runs<{ report: string; l1Stopped?: string }>(() => ({ report: 'a', l1Stopped: 'first' }), () => ({ report: 'b', l1Stopped: 'second' }));
  const out = await withRerunIfL1Stopped(twice.once, () => {});
  assert.is(twice.calls, 2);
  assert.is(out.report, 'b');
  assert.is(out.l1Stopped, 'second', 'the second stop is still told');
});

test.run();
