// Picks the hypervisor for a pod. `auto` means the built-in VMM where /dev/kvm runs stock guests
// (kvm_intel / kvm_amd), else QEMU with TCG. Asking for `kvm` where it cannot run fails at once.
import type { HypervisorChoice } from '../api/config.js';
import { VcError } from '../errors.js';
import { native } from '../native.js';
import { KvmHypervisor } from './kvm/kvm.js';
import { QemuHypervisor } from './qemu/qemu.js';
import type { Hypervisor, HypervisorKind } from './types.js';

export function resolveHypervisorKind(choice: HypervisorChoice): HypervisorKind {
  if (choice === 'qemu') return 'qemu';
  const probe = native().kvmProbe();
  if (choice === 'auto') return probe.stockGuests ? 'kvm' : 'qemu';
  if (!probe.stockGuests) {
    throw new VcError(
      'HYPERVISOR_UNAVAILABLE',
      `hypervisor "kvm" cannot run here: ${probe.reason ?? 'KVM is unavailable'}; use hypervisor "qemu" (or "auto"), which runs with TCG emulation on this host`,
    );
  }
  return 'kvm';
}

export function hypervisorFor(kind: HypervisorKind): Hypervisor {
  if (kind === 'qemu') return new QemuHypervisor();
  if (kind === 'kvm') return new KvmHypervisor();
  throw new VcError('HYPERVISOR_UNAVAILABLE', `unknown hypervisor "${String(kind)}"`);
}
