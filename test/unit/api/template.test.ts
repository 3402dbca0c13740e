// src/api/template.ts and the template path of createPod/startPod against the fake hypervisor
// (whose snapshot writes two small files and stops the VM, and whose restored guests answer only
// hello and restored until a `restored`, as vc-agent does): the files a template leaves, what a
// restored pod's agent is told first, every refusal with its code and message, the removal of
// what a maker that died left behind, and deleteTemplate refused while pods use the template.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPod, deletePod, startPod, stopPod } from '../../../src/api/pod.js';
import { createTemplate, deleteTemplate, listTemplates, verifyTemplate } from '../../../src/api/template.js';
import { gc } from '../../../src/api/gc.js';
import { VcError } from '../../../src/errors.js';
import { FakeHypervisor } from '../../helpers/fake-hypervisor.js';
import { expectCode } from '../../helpers/errors.js';
import { assertConsistent, fakePods, type FakePods } from './fake-pods.js';

let pods: FakePods;
test.before.each(() => {
  pods = fakePods();
});
test.after.each(async () => {
  await pods.done();
});

const templatesDir = () => join(pods.root, 'templates');
const UNSUPPORTED = "UNSUPPORTED: pod templates need the built-in VMM (hypervisor: 'kvm')";

async function makeTemplate(name = 'py', extra: Record<string, unknown> = {}) {
  return createTemplate({ name, hypervisor: 'kvm', vcpus: 2, memoryMiB: 256, network: 'none', ...extra }, pods.options());
}

test('createTemplate leaves <name>/{template.json,state,memory} and no pod or VM behind', async () => {
  const info = await makeTemplate();
  assert.equal({ name: info.name, vcpus: info.vcpus, memoryMiB: info.memoryMiB, vmmVersion: info.vmmVersion, usedBy: info.usedBy },
    { name: 'py', vcpus: 2, memoryMiB: 256, vmmVersion: 'fake-vmm 1', usedBy: [] });
  assert.equal(readdirSync(templatesDir()).filter((n) => !n.endsWith('.lock')).sort(), ['py']);
  assert.equal(readdirSync(join(templatesDir(), 'py')).sort(), ['memory', 'state', 'template.json']);
  const record = JSON.parse(readFileSync(join(templatesDir(), 'py', 'template.json'), 'utf8'));
  assert.is(record.hypervisor, 'kvm');
  assert.equal(record.bytes, info.bytes);
  assert.equal(record.nics, []);
  assert.ok(record.kernel.path && record.initrd.path, 'the kernel and initrd restored pods are recorded with');
  assert.equal(await pods.store.ids(), [], 'the template\'s pod is gone');
  assert.not.ok(pods.fake.calls.includes('agent:configure_network'), 'the template\'s guest is snapshotted with its NICs unconfigured');
  assert.is(pods.fake.live().length, 0, 'its VM stopped at the snapshot');
  // The agent connection is held across the snapshot (the restored agent's reset comes from it).
  const calls = pods.fake.calls;
  assert.ok(calls.indexOf('snapshot:template-py') > calls.indexOf('start:template-py'));
  const listed = await listTemplates(pods.options());
  assert.equal(listed.map((t) => t.name), ['py']);
  await expectCode(makeTemplate(), VcError, 'TEMPLATE_EXISTS', 'template "py" already exists');
});

test('a pod from a template is restored, told `restored` before anything else, and gets its own identity', async () => {
  await makeTemplate();
  for (const id of ['web-1', 'web-2']) {
    await createPod({ id, template: 'py', network: 'none' }, pods.options());
    await startPod(id, pods.options());
  }
  const [a, b] = ['web-1', 'web-2'].map((id) => pods.fake.vmOf(id)!);
  for (const [vm, id] of [[a!, 'web-1'], [b!, 'web-2']] as const) {
    assert.ok(vm.restoredFrom?.endsWith('/templates/py/state'), 'restored from the template\'s state file');
    assert.is(pods.fake.calls.includes(`start:${id}`), false, 'never booted');
    const ops = vm.guest.requests.filter((op) => op !== 'hello');
    assert.is(ops[0], 'restored', `the first request after hello: ${ops.join(', ')}`);
    assert.ok(ops.includes('configure_network'), 'the usual network set-up follows');
    const args = vm.guest.restoredArgs[0]!;
    assert.is(args.epoch, 1);
    assert.is(args.hostname, id);
    assert.match(args.machineId as string, /^[0-9a-f]{32}$/);
    assert.is(Buffer.from(args.seed as string, 'base64').length, 32);
    assert.ok(Math.abs((args.time as { sec: number }).sec - Date.now() / 1000) < 60);
    const record = await pods.store.read(id);
    assert.equal([record.config.vcpus, record.config.memoryMiB, record.restoreEpoch], [2, 256, 1]);
  }
  assert.is.not(a!.guest.restoredArgs[0]!.seed, b!.guest.restoredArgs[0]!.seed);
  assert.is.not(a!.guest.restoredArgs[0]!.machineId, b!.guest.restoredArgs[0]!.machineId);
  // Started again, the pod is restored again, with the next epoch.
  await stopPod('web-1', pods.options());
  const again = await startPod('web-1', pods.options());
  assert.equal(again.template, { name: 'py', epoch: 2 });
  assert.is(pods.fake.vmOf('web-1')!.guest.restoredArgs[0]!.epoch, 2);
  assert.equal((await listTemplates(pods.options()))[0]!.usedBy, ['web-1', 'web-2']);
  await assertConsistent(pods);
});

test('createPod({ template }): vcpus, memoryMiB or kernel other than the template\'s are refused, naming field and both values', async () => {
  await makeTemplate();
  await expectCode(createPod({ id: 'p', template: 'py', vcpus: 1 }, pods.options()), VcError, 'INVALID_CONFIG',
    'vcpus: pod p asks for 1, but template "py" has 2');
  await expectCode(createPod({ id: 'p', template: 'py', memoryMiB: 512 }, pods.options()), VcError, 'INVALID_CONFIG',
    'memoryMiB: pod p asks for 512, but template "py" has 256');
  await expectCode(createPod({ id: 'p', template: 'py', kernel: { path: '/k', modulesDir: '/m' } }, pods.options()), VcError, 'INVALID_CONFIG',
    'kernel.path: pod p asks for "/k"');
  // The same values as the template's are fine.
  await createPod({ id: 'p', template: 'py', vcpus: 2, memoryMiB: 256, network: 'none' }, pods.options());
  await expectCode(createPod({ id: 'q', template: 'nope', network: 'none' }, pods.options()), VcError, 'TEMPLATE_NOT_FOUND', 'template "nope" not found');
  // A template made without a NIC: its pods get no network by default, and cannot ask for one.
  await expectCode(createPod({ id: 'q', template: 'py', network: 'bridge' }, pods.options()), VcError, 'INVALID_CONFIG',
    'network: pod q asks for "bridge", but template "py" was made without a NIC (network none)');
  await createPod({ id: 'q', template: 'py' }, pods.options());
  assert.equal((await pods.store.read('q')).config.network, { mode: 'none' });
  await expectCode(createPod({ id: 'q', template: '../x' }, pods.options()), VcError, 'INVALID_CONFIG', 'template: must be a template name');
});

test('bad template configs and names are refused naming the field and value', async () => {
  await expectCode(createTemplate({ name: '-x' }, pods.options()), VcError, 'INVALID_CONFIG', 'name: must be 1-54 characters');
  await expectCode(createTemplate({ name: 'a'.repeat(55) }, pods.options()), VcError, 'INVALID_CONFIG', 'name:');
  await expectCode(createTemplate({ name: 't', vcpus: 0 } as never, pods.options()), VcError, 'INVALID_CONFIG', 'vcpus:');
  await expectCode(createTemplate({ name: 't', containers: [] } as never, pods.options()), VcError, 'INVALID_CONFIG', 'containers');
  await expectCode(deleteTemplate('a/b', pods.options()), VcError, 'INVALID_CONFIG', 'template name: must be 1-54 characters of letters, digits, _ . - starting with a letter or digit, got "a/b"');
  await expectCode(deleteTemplate('none', pods.options()), VcError, 'TEMPLATE_NOT_FOUND', 'template "none" not found');
  assert.is(pods.fake.live().length, 0);
});

test('QEMU answers UNSUPPORTED: pod templates need the built-in VMM', async () => {
  await expectCode(createTemplate({ name: 't', hypervisor: 'qemu' }, pods.options()), VcError, 'UNSUPPORTED', UNSUPPORTED);
  // A hypervisor without snapshots (QEMU's shape), whatever the config asks for.
  const qemuLike = new FakeHypervisor('qemu', false);
  await expectCode(createTemplate({ name: 't', hypervisor: 'kvm' }, { root: pods.root, hypervisor: qemuLike.factory }), VcError, 'UNSUPPORTED', UNSUPPORTED);
  await makeTemplate();
  await expectCode(createPod({ id: 'p', template: 'py', hypervisor: 'qemu' }, pods.options()), VcError, 'UNSUPPORTED', UNSUPPORTED);
  await expectCode(createPod({ id: 'p', template: 'py' }, { root: pods.root, hypervisor: qemuLike.factory }), VcError, 'UNSUPPORTED', UNSUPPORTED);
  assert.equal(await pods.store.ids(), []);
});

test('a template made by another vc-vmm is TEMPLATE_STALE', async () => {
  await makeTemplate();
  pods.fake.version = 'fake-vmm 2';
  await expectCode(createPod({ id: 'p', template: 'py', network: 'none' }, pods.options()), VcError, 'TEMPLATE_STALE', 'made by fake-vmm 1, and this is fake-vmm 2');
});

test('createTemplate reads the snapshot back whole before sealing it; a damaged one is TEMPLATE_CORRUPT and leaves nothing', async () => {
  await makeTemplate();
  const calls = pods.fake.calls;
  assert.ok(calls.indexOf('verifySnapshot') > calls.indexOf('snapshot:template-py'), 'verified after the snapshot');
  // The snapshot damaged between writing and reading back (a bad disk, as far as the maker knows).
  pods.fake.onStep = (step) => {
    if (step === 'verifySnapshot') {
      const creating = join(templatesDir(), 'bad.creating');
      writeFileSync(join(creating, 'memory'), Buffer.alloc(4096, 1));
    }
  };
  await expectCode(makeTemplate('bad'), VcError, 'TEMPLATE_CORRUPT', 'bad.creating/memory: the CRC-32C of all 4096 bytes of RAM differs');
  pods.fake.onStep = undefined;
  assert.equal(readdirSync(templatesDir()).filter((n) => !n.endsWith('.lock')), ['py']);
  assert.equal(await pods.store.ids(), []);
  assert.is(pods.fake.live().length, 0);
});

test('verifyTemplate: what the VMM read, a damaged file as TEMPLATE_CORRUPT, an unknown or bad name by its code', async () => {
  await makeTemplate();
  assert.equal(await verifyTemplate('py', pods.options()), { name: 'py', vcpus: 1, ramBytes: 4096, ramCrc: '0x98f94189' });
  writeFileSync(join(templatesDir(), 'py', 'state'), 'garbage\n');
  await expectCode(verifyTemplate('py', pods.options()), VcError, 'TEMPLATE_CORRUPT', 'template "py": ' + join(templatesDir(), 'py', 'state') + ': not a fake state file');
  await expectCode(verifyTemplate('nope', pods.options()), VcError, 'TEMPLATE_NOT_FOUND', 'template "nope" not found');
  await expectCode(verifyTemplate('Bad Name!', pods.options()), VcError, 'INVALID_CONFIG', 'template name: ');
  const qemuOnly = new FakeHypervisor('qemu', false);
  await expectCode(verifyTemplate('py', { ...pods.options(), hypervisor: qemuOnly.factory }), VcError, 'UNSUPPORTED', 'cannot read snapshots');
});

test('a failed create leaves no .creating directory, no pod and no VM', async () => {
  pods.fake.onStep = (step) => {
    if (step === 'snapshot') throw new Error('disk full');
  };
  const err = await makeTemplate().then(() => null, (e: Error) => e);
  assert.match(err?.message ?? 'it succeeded', 'disk full');
  pods.fake.onStep = undefined;
  assert.equal(readdirSync(templatesDir()).filter((n) => !n.endsWith('.lock')), []);
  assert.equal(await pods.store.ids(), []);
  assert.is(pods.fake.live().length, 0);
  await makeTemplate(); // and the name is free again
});

test('what a maker that died left (a .creating directory and its running pod) goes at the next template call', async () => {
  // As a createTemplate killed after its pod started: the directory made first, the pod running.
  mkdirSync(join(templatesDir(), 'py.creating'), { recursive: true });
  await createPod({ id: 'template-py', hypervisor: 'qemu', network: 'none' }, pods.options());
  await startPod('template-py', pods.options());
  assert.is(pods.fake.live().length, 1);
  assert.equal(await listTemplates(pods.options()), []);
  assert.not.ok(existsSync(join(templatesDir(), 'py.creating')), 'the .creating directory is removed');
  assert.equal(await pods.store.ids(), [], 'its pod is deleted');
  assert.is(pods.fake.live().length, 0, 'its VM is stopped');
});

test('gc removes a .creating leftover too, and says so', async () => {
  mkdirSync(join(templatesDir(), 'old.creating'), { recursive: true });
  const dry = await gc({ ...pods.options(), dryRun: true, cgroupParents: [] });
  assert.ok(dry.items.some((i) => i.what.startsWith('template old: left half-made') && !i.removed));
  assert.ok(existsSync(join(templatesDir(), 'old.creating')), 'a dry run removes nothing');
  const report = await gc({ ...pods.options(), cgroupParents: [] });
  assert.ok(report.items.some((i) => i.what.startsWith('template old: left half-made') && i.removed));
  assert.not.ok(existsSync(join(templatesDir(), 'old.creating')));
});

test('deleteTemplate is refused while a pod restored from it runs, unless forced', async () => {
  await makeTemplate();
  await makeTemplate('other');
  await createPod({ id: 'web', template: 'py', network: 'none' }, pods.options());
  await deleteTemplate('other', pods.options()); // nobody uses it
  await startPod('web', pods.options());
  await expectCode(deleteTemplate('py', pods.options()), VcError, 'TEMPLATE_IN_USE', 'template "py" is in use by running pod(s) web: stop them first, or delete it with force');
  await stopPod('web', pods.options());
  await deleteTemplate('py', pods.options()); // a stopped pod does not hold it
  assert.equal(await listTemplates(pods.options()), []);
  await expectCode(startPod('web', pods.options()), VcError, 'TEMPLATE_NOT_FOUND');
  assert.is((await pods.store.read('web')).state, 'stopped', 'the failed start left the pod as it was');
  await deletePod('web', pods.options());

  await makeTemplate();
  await createPod({ id: 'web', template: 'py', network: 'none' }, pods.options());
  await startPod('web', pods.options());
  await deleteTemplate('py', { ...pods.options(), force: true });
  assert.not.ok(existsSync(join(templatesDir(), 'py')));
  assert.is((await pods.store.read('web')).state, 'running', 'the running pod is left alone');
});

test('a restored agent that saw no restore fails the start: the pod never runs with the template\'s identity', async () => {
  await makeTemplate();
  await createPod({ id: 'web', template: 'py', network: 'none' }, pods.options());
  pods.fake.agentFailures.set('restored', { code: 'NOT_RESTORED', message: 'restored: no snapshot restore was seen' });
  await expectCode(startPod('web', pods.options()), VcError, 'HYPERVISOR_FAILED', 'saw no restore (its host connection was not reset), so it would run with the template\'s identity');
  assert.is((await pods.store.read('web')).state, 'ready');
  assert.is(pods.fake.live().length, 0);
});

test('connections a restored guest closes at first (its transport reset handled after the accept) are retried, and counted', async () => {
  await makeTemplate();
  await createPod({ id: 'web', template: 'py', network: 'none' }, pods.options());
  pods.fake.restoredCloses = 2;
  const said: string[] = [];
  const status = await startPod('web', pods.options({ onProgress: (line: string) => said.push(line) }));
  assert.equal(status.template, { name: 'py', epoch: 1 });
  const guest = pods.fake.vmOf('web')!.guest;
  assert.equal(guest.requests.slice(0, 4), ['closed-at:hello', 'closed-at:hello', 'hello', 'restored']);
  assert.ok(said.includes('pod web is ready (2 connection(s) closed by the restored guest first)'), said.join('\n'));
});

test('a restored guest that keeps closing connections fails the start after 5 retries, saying how many', async () => {
  await makeTemplate();
  await createPod({ id: 'web', template: 'py', network: 'none' }, pods.options());
  pods.fake.restoredCloses = 100;
  await expectCode(startPod('web', pods.options()), VcError, 'AGENT_UNREACHABLE', '(after 5 connection(s) the restored guest closed, each retried)');
  assert.is((await pods.store.read('web')).state, 'ready');
  assert.is(pods.fake.live().length, 0);
});

test('a connection closed after the agent applied `restored` is retried, and the retry sees the epoch applied', async () => {
  await makeTemplate();
  await createPod({ id: 'web', template: 'py', network: 'none' }, pods.options());
  await startPod('web', pods.options());
  await stopPod('web', pods.options());
  const original = pods.fake.restore!;
  pods.fake.restore = async (spec, snapshot, options) => {
    const vmm = await original(spec, snapshot, options);
    pods.fake.vmOf(spec.id)!.guest.closeAfterRestored = true;
    return vmm;
  };
  const status = await startPod('web', pods.options());
  assert.equal(status.template, { name: 'py', epoch: 2 });
  const guest = pods.fake.vmOf('web')!.guest;
  assert.is(guest.restoredArgs.length, 1, 'applied once');
  assert.equal(guest.requests.slice(0, 5), ['hello', 'restored', 'hello', 'restored', 'guest_info']);
});

test.run();
