// The addon loads through the one loader and its KVM probe tells the truth about this host.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, openSync, closeSync } from 'node:fs';
import { native, nativeExecutable, type KvmProbe } from '../../src/native.js';

test('the addon loads and reports its version', () => {
  assert.is(native().addonVersion, 1);
});

/** What the probe must say of `device`, worked out independently from /sys/module and open(2). */
function expectedProbe(device: string) {
  const loaded = (name: string) => existsSync(`/sys/module/${name}`);
  const flavor = loaded('kvm_intel') ? 'kvm_intel' : loaded('kvm_amd') ? 'kvm_amd' : loaded('kvm_pvm') ? 'kvm_pvm' : 'none';
  let openError: string | null = null;
  try { closeSync(openSync(device, 'r+')); } catch (err) { openError = (err as NodeJS.ErrnoException).code ?? 'error'; }
  return { flavor, openError };
}

function checkProbe(probe: KvmProbe, device: string): void {
  const { flavor, openError } = expectedProbe(device);
  assert.is(probe.device, device);
  assert.is(probe.flavor, flavor);
  if (openError !== null) assert.is(probe.available, false, `${device} does not open (${openError})`);
  assert.is(probe.available, openError === null && probe.apiVersion === 12);
  assert.is(probe.stockGuests, probe.available && (probe.flavor === 'kvm_intel' || probe.flavor === 'kvm_amd'));
  assert.is(probe.reason === null, probe.stockGuests, 'a reason is given exactly when stock guests cannot run');
  // Each host kind is named in the reason: a missing node, one that will not open, a non-KVM
  // device, PVM.
  if (openError === 'ENOENT') {
    const why = flavor === 'none' ? 'no KVM module is loaded' : `${flavor} is loaded but there is no device node`;
    assert.is(probe.reason, `cannot open ${device}: No such file or directory (${why})`);
  } else if (openError !== null) {
    assert.match(probe.reason ?? '', new RegExp(`^cannot open ${device}: `));
  } else if (!probe.available) {
    assert.match(probe.reason ?? '', /answered KVM_GET_API_VERSION with/);
  } else if (flavor === 'kvm_pvm') {
    assert.match(probe.reason ?? '', /PVM/);
  }
}

test('the KVM probe agrees with /sys/module and the device ($VC_KVM_DEVICE, else /dev/kvm)', () => {
  const probe = native().kvmProbe();
  checkProbe(probe, process.env.VC_KVM_DEVICE || '/dev/kvm');
  console.log(`  kvm probe: ${JSON.stringify(probe)}`);
});

test('VC_KVM_DEVICE moves the probe: a missing node, a directory, a device that is not KVM', () => {
  const before = process.env.VC_KVM_DEVICE;
  try {
    for (const device of ['/dev/does-not-exist', '/tmp', '/dev/null']) {
      process.env.VC_KVM_DEVICE = device;
      checkProbe(native().kvmProbe(), device);
      assert.is(native().kvmProbe().available, false);
    }
    process.env.VC_KVM_DEVICE = '';
    assert.is(native().kvmProbe().device, '/dev/kvm', 'an empty override means the default');
  } finally {
    if (before === undefined) delete process.env.VC_KVM_DEVICE;
    else process.env.VC_KVM_DEVICE = before;
  }
});

test('/dev/kvm itself, given explicitly, whatever this host has', () => {
  checkProbe(native().kvmProbe('/dev/kvm'), '/dev/kvm');
});

test('a device that does not exist is reported as unavailable with the errno text', () => {
  const probe = native().kvmProbe('/dev/does-not-exist');
  assert.is(probe.available, false);
  assert.is(probe.stockGuests, false);
  assert.match(probe.reason ?? '', /cannot open \/dev\/does-not-exist: No such file or directory/);
});

test('flock: a second open file description cannot take a held lock until it is released', () => {
  const path = `/tmp/vc-flock-${process.pid}`;
  const a = openSync(path, 'a'), b = openSync(path, 'a');
  try {
    assert.is(native().flock(a, true), true);
    assert.is(native().flock(b, true), false);
    native().funlock(a);
    assert.is(native().flock(b, true), true);
  } finally {
    closeSync(a); closeSync(b);
  }
});

test('flock rejects a bad file descriptor with the errno text', () => {
  assert.throws(() => native().flock(987654, true), /flock: Bad file descriptor/);
});

test('the guest agent executable is found and is static', async () => {
  const path = nativeExecutable('vc-agent');
  const { isStaticElf } = await import('../../src/guest/elf.js');
  const { readFileSync } = await import('node:fs');
  assert.ok(isStaticElf(readFileSync(path), path), `${path} is statically linked`);
});

test.run();
