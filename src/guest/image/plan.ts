// What an OCI layout or a docker archive resolves to before any layer is read: the image digest
// (known up front, so a cache hit costs only the small JSON reads), its config, and the layers.
import type { ImageFiles } from './files.js';
import type { LayerSource } from './layer.js';
import type { ImageConfig } from './types.js';

export interface ImagePlan {
  /** sha256 hex of the image config. */
  digest: string;
  config: ImageConfig;
  layers: LayerSource[];
}

/** JSON documents of an image are small; a bigger one is broken or hostile. */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

export function shortDigest(hex: string): string {
  return `sha256:${hex.slice(0, 12)}`;
}

export function layerLabel(i: number, n: number, hex: string, files: ImageFiles, name: string): string {
  return `layer ${i + 1}/${n} ${shortDigest(hex)} (${files.describe(name)})`;
}
