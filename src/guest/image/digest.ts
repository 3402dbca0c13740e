// sha256 digests as image manifests write them ("sha256:<64 hex>"), and a pass-through stream that
// hashes what flows through it, so a blob is verified in the same read that consumes it.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { GuestError } from '../errors.js';
import { shownValue } from './json.js';

const SHA256_HEX = /^[a-f0-9]{64}$/;

export function isSha256Hex(value: string): boolean {
  return SHA256_HEX.test(value);
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The hex part of a "sha256:<hex>" digest; `field` and `file` name the place for the error. */
export function parseDigest(value: unknown, field: string, file: string): string {
  if (typeof value !== 'string') throw new GuestError('IMAGE_INVALID', `${file}: ${field} is missing or not a string`);
  const sep = value.indexOf(':');
  const algorithm = sep > 0 ? value.slice(0, sep) : '';
  const hex = value.slice(sep + 1);
  if (algorithm !== 'sha256') {
    // Other algorithms are valid OCI, but we could not verify them: refuse rather than trust.
    if (/^[a-z0-9]+([+._-][a-z0-9]+)*$/.test(algorithm) && hex !== '') {
      throw new GuestError('IMAGE_UNSUPPORTED', `${file}: ${field} ${shownValue(value)} uses ${algorithm.slice(0, 100)}; only sha256 digests are supported`);
    }
    throw new GuestError('IMAGE_INVALID', `${file}: ${field} ${shownValue(value)} is not a digest (sha256:<64 hex digits>)`);
  }
  if (!SHA256_HEX.test(hex)) throw new GuestError('IMAGE_INVALID', `${file}: ${field} ${shownValue(value)} is not a sha256 digest (64 lowercase hex digits)`);
  return hex;
}

/** Hashes and counts the bytes passing through unchanged. */
export class HashTap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  /** Only once the stream has ended. */
  hex(): string {
    return this.hash.digest('hex');
  }
}
