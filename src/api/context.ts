// What every API call shares: where state lives, cancellation, progress reporting.
import { PodStore } from '../store/pod-store.js';
import { defaultRoot } from '../store/paths.js';

export interface CallOptions {
  /** State directory; default /run/virtcontainers (root), $XDG_RUNTIME_DIR/virtcontainers, or $VC_ROOT. */
  root?: string;
  signal?: AbortSignal;
  /** Called with a short human-readable line for each long step (kernel fetch, initrd build, boot). */
  onProgress?: (message: string) => void;
}

export function storeFor(options: CallOptions): PodStore {
  return new PodStore(options.root ?? defaultRoot());
}
