// Image references as the CLI takes them, in skopeo's transport syntax so the same string works
// with both: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:TAG]. As in skopeo
// (containers/image), the path ends at the first ':' after the transport.
import { GuestError } from '../errors.js';
import type { ImageSource } from './types.js';

const TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'] as const;

export function parseImageRef(ref: string): ImageSource {
  const sep = ref.indexOf(':');
  const transport = sep > 0 ? ref.slice(0, sep) : '';
  const rest = ref.slice(sep + 1);
  if (!(TRANSPORTS as readonly string[]).includes(transport)) {
    const hint = transport === 'docker' || ref.startsWith('docker://')
      ? '; registries are not contacted: copy the image first, e.g. `skopeo copy docker://busybox:latest oci:DIR:latest`'
      : '';
    throw new GuestError('INVALID_OPTION', `image "${ref}": unknown transport "${transport}" (use oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG])${hint}`);
  }
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  if (path === '') throw new GuestError('INVALID_OPTION', `image "${ref}": no path after "${transport}:"`);
  if (tag === '') throw new GuestError('INVALID_OPTION', `image "${ref}": empty tag after the path`);
  const kind = transport as (typeof TRANSPORTS)[number];
  return tag === undefined ? { kind, path } : { kind, path, tag };
}
