// The host sections' rerun rule in L1 (bench/host-sections.ts withOneRerun): an L1 that stops
// before its sections are done has those run once more in a fresh L1, and only those.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { skippedDensity, skippedMemory, skippedVmm, UNFINISHED, withOneRerun, type Errors, type HostSections } from '../../../bench/host-sections.js';
import type { HostSection } from '../../../bench/hosts-format.js';
import type { L1Info } from '../../../bench/lib/results.js';

const l1 = (failed?: string): L1Info => ({ why: 'no /dev/kvm', host: {} as L1Info['host'], bootSeconds: 9, totalSeconds: 60, scaled: [], ...(failed ? { failed } : {}) });
const done = (tag: string) => ({ skipped: `measured in ${tag}` });

/** A fake L1 boot per call: each call's answer in turn, and the sections each was asked for. */
function boots(...answers: ((which: readonly HostSection[]) => HostSections)[]) {
  const asked: (readonly HostSection[])[] = [];
  return {
    asked,
    once: async (which: readonly HostSection[]) => {
      asked.push(which);
      const next = answers[asked.length - 1];
      if (!next) throw new Error(`L1 booted ${asked.length} times`);
      return next(which);
    },
  };
}

const ctx = () => ({ errors: [] as Errors, lines: [] as string[], progress(m: string) { this.lines.push(m); } });

test('an L1 that finishes is not run again', async () => {
  const b = boots(() => ({ vmmStart: skippedVmm(done('first'), 'l1'), memory: skippedMemory(done('first'), 'l1'), density: skippedDensity(done('first'), 'l1'), l1: l1() }));
  const c = ctx();
  const r = await withOneRerun(['vmm', 'memory', 'density'], b.once, c);
  assert.equal(b.asked, [['vmm', 'memory', 'density']]);
  assert.is(r.l1?.rerunAfter, undefined);
  assert.is((r.memory as { skipped?: string }).skipped, 'measured in first');
});

test('an L1 that stopped in the middle: only the unfinished sections run again, and the result says why', async () => {
  const cut = 'nested L1: no output from L1 for 7 min after "vmm start: round 7/20"; aborted';
  const b = boots(
    () => ({ vmmStart: skippedVmm({ error: `${UNFINISHED} (${cut})` }, 'l1'), memory: skippedMemory({ error: `${UNFINISHED} (${cut})` }, 'l1'), density: skippedDensity({ skipped: 'not selected (--only)' }, null), l1: l1(cut) }),
    (which) => ({ vmmStart: skippedVmm(done('second'), 'l1'), memory: skippedMemory(done('second'), 'l1'), density: skippedDensity({ error: `asked for ${which.join(',')}` }, 'l1'), l1: l1() }),
  );
  const c = ctx();
  const r = await withOneRerun(['vmm', 'memory'], b.once, c);
  assert.equal(b.asked, [['vmm', 'memory'], ['vmm', 'memory']]);
  assert.is((r.vmmStart as { skipped?: string }).skipped, 'measured in second');
  assert.is((r.memory as { skipped?: string }).skipped, 'measured in second');
  assert.is((r.density as { skipped?: string }).skipped, 'not selected (--only)', 'an unselected section is not taken from the rerun');
  assert.is(r.l1?.rerunAfter, cut);
  assert.match(c.lines.join('\n'), 'vmm, memory once more in a fresh L1');
});

test('sections the first L1 finished are kept; a second stop is not run a third time', async () => {
  const cut = 'nested L1: L1: QEMU exited (code 0) before the command finished';
  const b = boots(
    () => ({ vmmStart: skippedVmm(done('first'), 'l1'), memory: skippedMemory({ error: `${UNFINISHED} (${cut})` }, 'l1'), density: skippedDensity({ error: `${UNFINISHED} (${cut})` }, 'l1'), l1: l1(cut) }),
    () => ({ vmmStart: skippedVmm({ error: 'should not be taken' }, 'l1'), memory: skippedMemory({ error: `${UNFINISHED} (again)` }, 'l1'), density: skippedDensity({ error: `${UNFINISHED} (again)` }, 'l1'), l1: l1('again') }),
  );
  const r = await withOneRerun(['vmm', 'memory', 'density'], b.once, ctx());
  assert.equal(b.asked, [['vmm', 'memory', 'density'], ['memory', 'density']]);
  assert.is((r.vmmStart as { skipped?: string }).skipped, 'measured in first');
  assert.match((r.memory as { error?: string }).error ?? '', '(again)');
  assert.is(r.l1?.failed, 'again');
  assert.is(r.l1?.rerunAfter, cut);
});

test('an L1 that failed before any report (no l1 info): every selected section runs again', async () => {
  const message = 'nested L1: L1: QEMU exited (code 0) before the command started';
  const c = ctx();
  const b = boots(
    () => { c.errors.push({ section: 'host sections in L1', message }); return { vmmStart: skippedVmm({ error: message }, 'l1'), memory: skippedMemory({ error: message }, 'l1'), density: skippedDensity({ skipped: 'not selected (--only)' }, null), l1: null }; },
    () => ({ vmmStart: skippedVmm(done('second'), 'l1'), memory: skippedMemory(done('second'), 'l1'), density: skippedDensity({ error: 'unused' }, 'l1'), l1: l1() }),
  );
  const r = await withOneRerun(['vmm', 'memory'], b.once, c);
  assert.equal(b.asked, [['vmm', 'memory'], ['vmm', 'memory']]);
  assert.is((r.memory as { skipped?: string }).skipped, 'measured in second');
  assert.is(r.l1?.rerunAfter, message);
  assert.is(c.errors.length, 1, 'the first L1\'s failure stays on record');
});

test.run();
