// Each hypervisor states its limits, and createPod checks a pod against them before any slow step:
// a kvm pod with 4096 MiB fails at create with INVALID_CONFIG naming the limit.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPod } from '../../../src/api/pod.js';
import { VcError } from '../../../src/errors.js';
import { guestCmdline, kvmCmdline, qemuCmdline } from '../../../src/hypervisor/cmdline.js';
import { IMAGE_SLOTS } from '../../../src/hypervisor/kvm/config.js';
import { KvmHypervisor } from '../../../src/hypervisor/kvm/kvm.js';
import { checkDiskSlots, checkPodLimits } from '../../../src/hypervisor/limits.js';
import { QemuHypervisor } from '../../../src/hypervisor/qemu/qemu.js';
import { hostnameFromId, HOSTNAME_PATTERN } from '../../../src/model/hostname.js';
import { native } from '../../../src/native.js';
import { expectCode } from '../../helpers/errors.js';

const kvm = new KvmHypervisor();
const qemu = new QemuHypervisor();

/** A synchronous check that must throw INVALID_CONFIG with a message matching. */
const throwsInvalid = (fn: () => void, message: RegExp) => expectCode((async () => fn())(), VcError, 'INVALID_CONFIG', message);

test('the built-in VMM takes 2..3072 MiB and 1..254 vCPUs, with IMAGE_SLOTS image disks', async () => {
  checkPodLimits({ id: 'p', memoryMiB: 3072, vcpus: 254 }, kvm);
  await throwsInvalid(() => checkPodLimits({ id: 'p', memoryMiB: 4096, vcpus: 1 }, kvm), /memoryMiB: hypervisor "kvm" takes 2\.\.3072, got 4096/);
  await throwsInvalid(() => checkPodLimits({ id: 'p', memoryMiB: 512, vcpus: 255 }, kvm), /vcpus: hypervisor "kvm" takes 1\.\.254, got 255/);
  checkDiskSlots('p', IMAGE_SLOTS, kvm);
  await throwsInvalid(() => checkDiskSlots('p', IMAGE_SLOTS + 1, kvm), new RegExp(`${IMAGE_SLOTS + 1} distinct images, but hypervisor "kvm" holds at most ${IMAGE_SLOTS}`));
});

test('QEMU sets no bound below the pod config\'s own', () => {
  checkPodLimits({ id: 'p', memoryMiB: 65536, vcpus: 64 }, qemu);
  checkDiskSlots('p', 100, qemu);
});

test('createPod: a kvm pod beyond the VMM\'s memory fails at create, before anything is fetched or written', async () => {
  if (!native().kvmProbe().stockGuests) {
    console.log('SKIP createPod on kvm: KVM cannot run stock guests here');
    return;
  }
  const root = mkdtempSync(join(tmpdir(), 'vc-limits-'));
  try {
    const progress: string[] = [];
    await expectCode(createPod({ id: 'big', hypervisor: 'kvm', memoryMiB: 4096 }, { root, onProgress: (m) => progress.push(m) }), VcError, 'INVALID_CONFIG', /memoryMiB: hypervisor "kvm" takes 2\.\.3072, got 4096/);
    assert.equal(progress, []);
    assert.not.ok(existsSync(join(root, 'pods', 'big')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('one kernel command line: the base every guest gets, and what each hypervisor adds', () => {
  const base = guestCmdline('web');
  assert.is(base, 'console=ttyS0 panic=-1 random.trust_cpu=on vc.hostname=web');
  assert.is(kvmCmdline(base), `${base} reboot=k pci=off quiet`);
  assert.is(qemuCmdline(base, 'kvm', 2445430), `${base} reboot=t`);
  assert.is(qemuCmdline(base, 'tcg', 2445430), `${base} reboot=t tsc_early_khz=2445430`);
  assert.is(qemuCmdline(base, 'tcg'), `${base} reboot=t`);
});

test('one rule names hosts from ids: always a valid host name', () => {
  assert.is(hostnameFromId('web'), 'web');
  assert.is(hostnameFromId('my_app.v2'), 'my-app-v2');
  assert.is(hostnameFromId('a_'), 'a');
  const long = `${'a'.repeat(62)}_b`;
  assert.is(hostnameFromId(long), 'a'.repeat(62));
  for (const id of ['web', 'my_app.v2', 'a_', long, `${'x'.repeat(62)}.`, '0']) assert.ok(HOSTNAME_PATTERN.test(hostnameFromId(id)), id);
});

test.run();
