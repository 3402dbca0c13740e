// What every API call shares: where state lives, cancellation, progress reporting.
import { hypervisorFor } from '../hypervisor/select.js';
import type { Hypervisor } from '../hypervisor/types.js';
import type { HypervisorKind } from '../model/hypervisor.js';
import { PodStore } from '../store/pod-store.js';
import { defaultRoot } from '../store/paths.js';

export interface CallOptions {
  /** State directory; default /run/virtcontainers (root), $XDG_RUNTIME_DIR/virtcontainers, or $VC_ROOT. */
  root?: string;
  signal?: AbortSignal;
  /** Called with a short human-readable line for each long step (kernel fetch, initrd build, boot). */
  onProgress?: (message: string) => void;
  /**
   * For tests and embedders: makes the hypervisor that runs pods of `kind` (the kind is still
   * chosen from the pod config and recorded). Default: the built-in ones (QEMU, the built-in VMM).
   * Every call on a pod must be given the same factory as the call that started it.
   */
  hypervisor?: (kind: HypervisorKind) => Hypervisor;
}

export function storeFor(options: CallOptions): PodStore {
  return new PodStore(options.root ?? defaultRoot());
}

/** The hypervisor for pods of `kind`, as `options` says to make it. */
export function hypervisorOf(options: CallOptions, kind: HypervisorKind): Hypervisor {
  return (options.hypervisor ?? hypervisorFor)(kind);
}
