// What an OCI layout or a docker archive resolves to before any layer is read: the image digest
// (known up front, so a cache hit costs only the small JSON reads), its config, and the layers.
import { GuestError } from '../errors.js';
import type { ImageFiles } from './files.js';
import type { LayerSource } from './layer.js';
import type { ImageConfig } from './types.js';

export interface ImagePlan {
  /** sha256 hex of the image config. */
  digest: string;
  config: ImageConfig;
  layers: LayerSource[];
}

/**
 * Every layer is applied in turn, so a manifest naming one big blob 200000 times (a 16 MiB config
 * holds that many diff_ids) would be work without end from a small archive. Docker stops at 125.
 */
export const MAX_LAYERS = 500;

/** JSON documents of an image are small; a bigger one is broken or hostile. */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

export function shortDigest(hex: string): string {
  return `sha256:${hex.slice(0, 12)}`;
}

export function layerLabel(i: number, n: number, hex: string, files: ImageFiles, name: string): string {
  return `layer ${i + 1}/${n} ${shortDigest(hex)} (${files.describe(name)})`;
}

export function checkLayerCount(n: number, file: string): void {
  if (n > MAX_LAYERS) throw new GuestError('IMAGE_UNSUPPORTED', `${file}: ${n} layers, more than the ${MAX_LAYERS} an image may have`);
}
