// The addon loads through the one loader and its KVM probe tells the truth about this host.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, openSync, closeSync } from 'node:fs';
import { native, nativeExecutable } from '../../src/native.js';

test('the addon loads and reports its version', () => {
  assert.is(native().addonVersion, 1);
});

test('the KVM probe agrees with /sys/module and /dev/kvm', () => {
  const probe = native().kvmProbe();
  const loaded = (name: string) => existsSync(`/sys/module/${name}`);
  const expected = loaded('kvm_intel') ? 'kvm_intel' : loaded('kvm_amd') ? 'kvm_amd' : loaded('kvm_pvm') ? 'kvm_pvm' : 'none';
  assert.is(probe.flavor, expected);
  assert.is(probe.device, '/dev/kvm');
  let opens = true;
  try { closeSync(openSync('/dev/kvm', 'r+')); } catch { opens = false; }
  assert.is(probe.available, opens && probe.apiVersion === 12);
  assert.is(probe.stockGuests, probe.available && (probe.flavor === 'kvm_intel' || probe.flavor === 'kvm_amd'));
  assert.is(probe.reason === null, probe.stockGuests, 'a reason is given exactly when stock guests cannot run');
  if (probe.flavor === 'kvm_pvm') assert.match(probe.reason ?? '', /PVM/);
  console.log(`  kvm probe: ${JSON.stringify(probe)}`);
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
