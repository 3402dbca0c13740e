import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hypervisorOf } from '../../../src/api/context.js';
import { KvmHypervisor } from '../../../src/hypervisor/kvm/kvm.js';
import { QemuHypervisor } from '../../../src/hypervisor/qemu/qemu.js';
import { FakeHypervisor } from '../../helpers/fake-hypervisor.js';

test('hypervisorOf: without the option, the built-in hypervisor of each kind', () => {
  assert.instance(hypervisorOf({}, 'qemu'), QemuHypervisor);
  assert.instance(hypervisorOf({}, 'kvm'), KvmHypervisor);
});

test('hypervisorOf: the option makes it, and is told the kind', () => {
  const fake = new FakeHypervisor();
  const asked: string[] = [];
  const options = { hypervisor: (kind: 'qemu' | 'kvm') => (asked.push(kind), fake) };
  assert.is(hypervisorOf(options, 'kvm'), fake);
  assert.is(hypervisorOf(options, 'qemu'), fake);
  assert.equal(asked, ['kvm', 'qemu']);
});

test.run();
