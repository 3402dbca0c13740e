// The steps startPod publishes for timing (src/step-timing.ts) on the fake hypervisor: a cold pod's
// and a restored pod's, in the order they happen, each with its pod id and a time that only grows;
// nothing once the subscriber has gone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createPod, startPod, stopPod } from '../../../src/api/pod.js';
import { createTemplate } from '../../../src/api/template.js';
import { STEP_CHANNEL, type StepEvent } from '../../../src/step-timing.js';
import { fakePods, type FakePods } from './fake-pods.js';

let pods: FakePods;
let events: StepEvent[] = [];
const listen = (e: unknown) => events.push(e as StepEvent);
test.before.each(() => {
  pods = fakePods();
  events = [];
  subscribe(STEP_CHANNEL, listen);
});
test.after.each(async () => {
  unsubscribe(STEP_CHANNEL, listen);
  await pods.done();
});

const stepsOf = (id: string) => events.filter((e) => e.op === 'startPod' && e.id === id);

function assertInOrder(got: StepEvent[], want: string[]): void {
  assert.equal(got.map((e) => e.step), want);
  for (let i = 1; i < got.length; i++) assert.ok(got[i]!.at >= got[i - 1]!.at, `${got[i]!.step} is not before ${got[i - 1]!.step}`);
}

test('a cold start publishes its steps, from the lock to the running record', async () => {
  await createPod({ id: 'cold', hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod('cold', pods.options());
  assertInOrder(stepsOf('cold'), ['locked', 'network-planned', 'starting-recorded', 'network-made', 'vmm-started', 'vmm-recorded',
    'agent-ready', 'network-configured', 'running-recorded']);
});

test('a restored start publishes the template check and the reseed too', async () => {
  await createTemplate({ name: 't', hypervisor: 'kvm', vcpus: 1, memoryMiB: 128, network: 'none' }, pods.options());
  await createPod({ id: 'warm', template: 't', network: 'none' }, pods.options());
  events = [];
  await startPod('warm', pods.options());
  assertInOrder(stepsOf('warm'), ['locked', 'template-read', 'template-checked', 'network-planned', 'starting-recorded', 'network-made',
    'vmm-started', 'vmm-recorded', 'agent-ready', 'agent-reseeded', 'network-configured', 'running-recorded']);
  assert.ok(events.every((e) => e.op === 'startPod' && e.id === 'warm'), 'only this call\'s steps');
});

test('nothing is published without a subscriber', async () => {
  unsubscribe(STEP_CHANNEL, listen);
  await createPod({ id: 'quiet', hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod('quiet', pods.options());
  await stopPod('quiet', pods.options());
  assert.equal(events, []);
  subscribe(STEP_CHANNEL, listen);
});

test.run();
