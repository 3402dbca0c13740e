// Picks the hypervisor for a pod. `auto` means the built-in VMM where KVM runs stock guests; until
// the built-in VMM lands it means QEMU, with -accel kvm where it can and tcg elsewhere.
import type { HypervisorChoice } from '../api/config.js';
import { VcError } from '../errors.js';
import { native } from '../native.js';
import { QemuHypervisor } from './qemu/qemu.js';
import type { Hypervisor, HypervisorKind } from './types.js';

export function resolveHypervisorKind(choice: HypervisorChoice): HypervisorKind {
  if (choice !== 'kvm') return 'qemu';
  const probe = native().kvmProbe();
  if (!probe.stockGuests) {
    throw new VcError(
      'HYPERVISOR_UNAVAILABLE',
      `hypervisor "kvm" cannot run here: ${probe.reason ?? 'KVM is unavailable'}; use hypervisor "qemu" (or "auto"), which runs with ${probe.stockGuests ? 'KVM' : 'TCG emulation'} on this host`,
    );
  }
  throw new VcError(
    'HYPERVISOR_UNAVAILABLE',
    'hypervisor "kvm" (the built-in VMM) is not part of this version yet; use hypervisor "qemu" or "auto"',
  );
}

export function hypervisorFor(kind: HypervisorKind): Hypervisor {
  if (kind === 'qemu') return new QemuHypervisor();
  throw new VcError('HYPERVISOR_UNAVAILABLE', `hypervisor "${kind}" is not available in this version`);
}
