// Picks the hypervisor for a pod. `auto` means the built-in VMM where /dev/kvm runs stock guests
// (kvm_intel / kvm_amd), else QEMU with TCG. Asking for `kvm` where it cannot run fails at once.
import { VcError } from '../errors.js';
import { native, type KvmProbe } from '../native.js';
import { KvmHypervisor, kvmUnavailable } from './kvm/kvm.js';
import { QemuHypervisor } from './qemu/qemu.js';
import type { HypervisorChoice, HypervisorKind } from '../model/hypervisor.js';
import type { Hypervisor } from './types.js';

/** `probe` defaults to this host's (the device is `$VC_KVM_DEVICE` when set, else /dev/kvm). */
export function resolveHypervisorKind(choice: HypervisorChoice, probe: KvmProbe = native().kvmProbe()): HypervisorKind {
  if (choice === 'qemu') return 'qemu';
  if (choice === 'auto') return probe.stockGuests ? 'kvm' : 'qemu';
  const unavailable = kvmUnavailable(probe);
  if (unavailable) throw unavailable;
  return 'kvm';
}

export function hypervisorFor(kind: HypervisorKind): Hypervisor {
  if (kind === 'qemu') return new QemuHypervisor();
  if (kind === 'kvm') return new KvmHypervisor();
  throw new VcError('HYPERVISOR_UNAVAILABLE', `unknown hypervisor "${String(kind)}"`);
}
