// Abort at every await: each call runs once to count its points (every hypervisor step, every
// agent request the fake guest answers, every progress line), then once per point with the
// AbortSignal fired there (and once already aborted). Whatever the outcome, what is on disk must
// agree with what the fake made, and stopping and deleting the pods afterwards must leave nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createContainer, startContainer } from '../../../src/api/container.js';
import { createPod, deletePod, startPod, stopPod } from '../../../src/api/pod.js';
import { listPods } from '../../../src/api/pod-status.js';
import { assertConsistent, fakePods, type ApiOptions, type FakePods } from './fake-pods.js';

interface Case {
  name: string;
  setup(pods: FakePods): Promise<void>;
  call(pods: FakePods, options: ApiOptions): Promise<unknown>;
}

const withContainers = (pods: FakePods) => ({
  id: 'p',
  hypervisor: 'qemu' as const,
  network: 'none' as const,
  containers: ['c1', 'c2'].map((id) => ({ id, rootfs: pods.rootfs(id), command: ['/bin/true'] })),
});

const cases: Case[] = [
  { name: 'createPod', setup: async () => {}, call: (pods, options) => createPod(withContainers(pods), options) },
  {
    name: 'startPod (two listed containers)',
    setup: async (pods) => void (await createPod(withContainers(pods), pods.options())),
    call: (_pods, options) => startPod('p', options),
  },
  {
    name: 'stopPod',
    setup: async (pods) => {
      await createPod(withContainers(pods), pods.options());
      await startPod('p', pods.options());
    },
    call: (_pods, options) => stopPod('p', options),
  },
  {
    name: 'createContainer',
    setup: async (pods) => {
      await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
      await startPod('p', pods.options());
    },
    call: (pods, options) => createContainer('p', { id: 'c', rootfs: pods.rootfs('c'), command: ['/bin/true'] }, options),
  },
  {
    name: 'startContainer',
    setup: async (pods) => {
      await createPod({ id: 'p', hypervisor: 'qemu', network: 'none' }, pods.options());
      await startPod('p', pods.options());
      await createContainer('p', { id: 'c', rootfs: pods.rootfs('c'), command: ['/bin/true'] }, pods.options());
    },
    call: (_pods, options) => startContainer('p', 'c', options),
  },
];

/** Runs `c` with the signal aborted at point `at` (-1: before the call). */
async function runAbortedAt(c: Case, at: number): Promise<{ points: number; outcome: unknown }> {
  const pods = fakePods();
  try {
    await c.setup(pods);
    const controller = new AbortController();
    if (at < 0) controller.abort(new Error('aborted by the test'));
    let points = 0;
    const point = () => {
      if (points++ === at) controller.abort(new Error('aborted by the test'));
    };
    pods.fake.onStep = point;
    const outcome = await c.call(pods, pods.options({ signal: controller.signal, onProgress: point, bootTimeoutMs: 5000 }))
      .then(() => 'ok', (err: unknown) => err);
    pods.fake.onStep = undefined;
    await assertConsistent(pods);
    // What the call left can be driven on to the end, and then nothing remains.
    for (const pod of await listPods(pods.options())) {
      if (pod.state === 'running' || pod.state === 'paused') await stopPod(pod.id, pods.options());
      await deletePod(pod.id, pods.options());
    }
    assert.equal(pods.fake.live(), [], 'no VM left');
    assert.equal(await pods.store.ids(), [], 'no pod left');
    return { points, outcome };
  } finally {
    await pods.done();
  }
}

for (const c of cases) {
  test(`abort at each await of ${c.name}`, async () => {
    // stopPod does not look at its signal once it holds the lock (the guest's power-off is best
    // effort): it stops the pod even when aborted before the call.
    const before = await runAbortedAt(c, -1);
    if (c.name !== 'stopPod') assert.instance(before.outcome, Error, 'an aborted signal stops the call before it starts');
    const clean = await runAbortedAt(c, Number.MAX_SAFE_INTEGER);
    assert.is(clean.outcome, 'ok');
    assert.ok(clean.points > 0);
    let rejected = 0;
    for (let at = 0; at < clean.points; at++) {
      const { outcome } = await runAbortedAt(c, at);
      if (outcome !== 'ok') rejected++;
    }
    if (process.env.VC_DEBUG_ABORT) console.log(c.name, clean.points, rejected);
    assert.ok(rejected > 0 || c.name === 'stopPod', `${c.name}: some abort point rejects`);
  });
}

test.run();
