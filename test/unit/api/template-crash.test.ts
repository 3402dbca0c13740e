// createTemplate is crash-only: a child process running it (with the fake hypervisor) is killed at
// each of its steps in turn (VC_TEST_CRASH_AT, src/crash-points.ts); after every kill the next
// template call finds either a whole template or nothing — no `.creating` directory, no
// `template-py` pod, no VM — and the template can be made again. Each step must have been killed
// at (the hook fires), and the run past the last step must finish normally.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTemplate, deleteTemplate, listTemplates } from '../../../src/api/template.js';
import { assertConsistent, fakePods } from './fake-pods.js';

const child = fileURLToPath(new URL('./template-crash-child.js', import.meta.url));
const STEPS = ['creating-recorded', 'pod-created', 'pod-started', 'snapshot-written', 'pod-deleted', 'template-sealed'];

test('createTemplate killed at every step: the next call finds a whole template or nothing, and makes it again', async () => {
  const pods = fakePods();
  try {
    const killedAt: string[] = [];
    for (let k = 1; k <= STEPS.length + 1; k++) {
      const r = spawnSync(process.execPath, [child, pods.root], { env: { ...process.env, VC_TEST_CRASH_AT: `createTemplate:${k}` }, encoding: 'utf8', timeout: 60_000 });
      if (k > STEPS.length) {
        assert.is(r.status, 0, `past the last step the create finishes: ${r.stderr}`);
      } else {
        assert.is(r.signal, 'SIGKILL', `killed at step ${k}: ${r.stderr}`);
        const step = /at createTemplate step \d+ \(([\w-]+)\)/.exec(r.stderr)?.[1];
        assert.is(step, STEPS[k - 1], r.stderr);
        killedAt.push(step!);
      }
      // The next call settles what the dead one left: a whole template (killed after the rename) or none.
      const names = (await listTemplates(pods.options())).map((t) => t.name);
      const whole = k >= STEPS.length;
      assert.equal(names, whole ? ['py'] : [], `after a kill at step ${k}`);
      assert.equal(readdirSync(join(pods.root, 'templates')).filter((n) => n.endsWith('.creating')), [], 'no .creating directory left');
      assert.equal(await pods.store.ids(), [], 'the template\'s pod is gone');
      await assertConsistent(pods);
      if (!whole) await createTemplate({ name: 'py', hypervisor: 'kvm', vcpus: 1, memoryMiB: 256, network: 'none' }, pods.options());
      assert.ok(existsSync(join(pods.root, 'templates', 'py', 'memory')));
      await deleteTemplate('py', pods.options());
    }
    assert.equal(killedAt, STEPS);
  } finally {
    await pods.done();
  }
});

test.run();
