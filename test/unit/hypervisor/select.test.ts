// Hypervisor selection on each host kind: real KVM (kvm_intel / kvm_amd), PVM, and no usable
// /dev/kvm (missing node, with or without kvm_pvm; a node that cannot be opened). The probes
// below are what the addon answers on such hosts (test/native/addon.test.ts checks the addon
// itself); the last tests drive the real probe through VC_KVM_DEVICE.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KvmHypervisor, kvmUnavailable } from '../../../src/hypervisor/kvm/kvm.js';
import { QemuHypervisor } from '../../../src/hypervisor/qemu/qemu.js';
import { resolveHypervisorKind } from '../../../src/hypervisor/select.js';
import type { KvmProbe } from '../../../src/native.js';

const hosts: Record<string, KvmProbe> = {
  'real KVM (kvm_intel)': { device: '/dev/kvm', flavor: 'kvm_intel', available: true, apiVersion: 12, stockGuests: true, reason: null },
  'real KVM (kvm_amd)': { device: '/dev/kvm', flavor: 'kvm_amd', available: true, apiVersion: 12, stockGuests: true, reason: null },
  PVM: {
    device: '/dev/kvm', flavor: 'kvm_pvm', available: true, apiVersion: 12, stockGuests: false,
    reason: '/dev/kvm is PVM (kvm_pvm): guest kernel mode is emulated and a stock Linux guest cannot boot',
  },
  'no node, kvm_pvm loaded': {
    device: '/dev/kvm', flavor: 'kvm_pvm', available: false, apiVersion: null, stockGuests: false,
    reason: 'cannot open /dev/kvm: No such file or directory (kvm_pvm is loaded but there is no device node)',
  },
  'no node, no module': {
    device: '/dev/kvm', flavor: 'none', available: false, apiVersion: null, stockGuests: false,
    reason: 'cannot open /dev/kvm: No such file or directory (no KVM module is loaded)',
  },
  'a node that cannot be opened': {
    device: '/dev/kvm', flavor: 'kvm_intel', available: false, apiVersion: null, stockGuests: false,
    reason: 'cannot open /dev/kvm: Permission denied',
  },
};

for (const [kind, probe] of Object.entries(hosts)) {
  test(`${kind}: qemu is always qemu, auto and kvm follow the probe`, () => {
    assert.is(resolveHypervisorKind('qemu', probe), 'qemu');
    assert.is(resolveHypervisorKind('auto', probe), probe.stockGuests ? 'kvm' : 'qemu');
    assert.is(new QemuHypervisor().accel(probe), probe.stockGuests ? 'kvm' : 'tcg');
    if (probe.stockGuests) {
      assert.is(resolveHypervisorKind('kvm', probe), 'kvm');
      assert.is(kvmUnavailable(probe), null);
      return;
    }
    try {
      resolveHypervisorKind('kvm', probe);
      assert.unreachable('kvm must be refused where KVM cannot run stock guests');
    } catch (err) {
      assert.is((err as { code?: string }).code, 'HYPERVISOR_UNAVAILABLE');
      // The message quotes the probe's reason and names the way out.
      assert.ok((err as Error).message.includes(`cannot run here: ${probe.reason}; use hypervisor "qemu"`), (err as Error).message);
    }
  });
}

test('QEMU uses TCG when VC_KVM_DEVICE names a device other than /dev/kvm (QEMU opens /dev/kvm itself)', () => {
  const other = { ...hosts['real KVM (kvm_amd)']!, device: '/tmp/kvm-copy' };
  assert.is(new QemuHypervisor().accel(other), 'tcg');
});

test('VC_KVM_DEVICE hides the device from the real probe: auto picks qemu, kvm names the path', async () => {
  const before = process.env.VC_KVM_DEVICE;
  process.env.VC_KVM_DEVICE = '/nonexistent/kvm-hidden-by-test';
  try {
    assert.is(resolveHypervisorKind('auto'), 'qemu');
    assert.is(new QemuHypervisor().accel(), 'tcg');
    for (const attempt of [async () => resolveHypervisorKind('kvm'), () => new KvmHypervisor().check()]) {
      try {
        await attempt();
        assert.unreachable('kvm must be refused with the device hidden');
      } catch (err) {
        assert.is((err as { code?: string }).code, 'HYPERVISOR_UNAVAILABLE');
        assert.match((err as Error).message, /cannot open \/nonexistent\/kvm-hidden-by-test: No such file or directory/);
      }
    }
  } finally {
    if (before === undefined) delete process.env.VC_KVM_DEVICE;
    else process.env.VC_KVM_DEVICE = before;
  }
});

test('QEMU missing: HYPERVISOR_UNAVAILABLE naming the program, where it looked, and the package to install', async () => {
  for (const [binary, where] of [['vc-no-such-qemu', 'looked in PATH'], ['/nonexistent/qemu-system-x86_64', 'looked in /nonexistent/qemu-system-x86_64']] as const) {
    try {
      await new QemuHypervisor(binary).check();
      assert.unreachable(`${binary} must be reported missing`);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'HYPERVISOR_UNAVAILABLE');
      assert.ok((err as Error).message.startsWith(`qemu: ${binary} not found (${where}); `), (err as Error).message);
      assert.match((err as Error).message, /qemu-system-x86 \(Debian, Ubuntu\) or qemu-system-x86-core \(Fedora\), or set VC_QEMU/);
    }
  }
});

test.run();
