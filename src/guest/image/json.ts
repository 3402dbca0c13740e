// Reading untrusted image JSON (index, manifests, configs): every failure names the file and the
// field, so a broken image says what is wrong instead of failing later with a TypeError.
import { GuestError } from '../errors.js';

export type JsonObject = Record<string, unknown>;

/** Image JSON nests a few levels; JSON.parse of a 16 MiB "[[[[…" takes ≈ 18 s and 0.5 GB. */
export const MAX_JSON_DEPTH = 100;
/**
 * Image JSON holds thousands of values at most; 16 MiB of "{}," is 5.6 million objects, ≈ 0.5 GB
 * once parsed. A million stays near 100 MB.
 */
export const MAX_JSON_VALUES = 1_000_000;

export function parseJson(data: Uint8Array, file: string): unknown {
  checkShape(data, file);
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (err) {
    throw new GuestError('IMAGE_INVALID', `${file}: malformed JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Bounds what JSON.parse will build, in one pass over the bytes: nesting, and values (counted as
 * array and object openings and commas); brackets and commas inside strings do not count.
 */
function checkShape(data: Uint8Array, file: string): void {
  let depth = 0;
  let values = 0;
  let inString = false;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (inString) {
      if (b === 0x5c) i++; // a backslash escapes the next byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) {
      inString = true;
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new GuestError('IMAGE_INVALID', `${file}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
      if (++values > MAX_JSON_VALUES) break;
    } else if (b === 0x5d || b === 0x7d) {
      depth--;
    } else if (b === 0x2c && ++values > MAX_JSON_VALUES) {
      break;
    }
  }
  if (values > MAX_JSON_VALUES) throw new GuestError('IMAGE_INVALID', `${file}: JSON with more than ${MAX_JSON_VALUES} values`);
}

export function asObject(value: unknown, field: string, file: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GuestError('IMAGE_INVALID', `${file}: ${field} must be a JSON object`);
  }
  return value as JsonObject;
}

export function asArray(value: unknown, field: string, file: string): unknown[] {
  if (!Array.isArray(value)) throw new GuestError('IMAGE_INVALID', `${file}: ${field} must be a JSON array`);
  return value;
}

export function asString(value: unknown, field: string, file: string): string {
  if (typeof value !== 'string') throw new GuestError('IMAGE_INVALID', `${file}: ${field} must be a string`);
  return value;
}

/** Absent and null both mean "not set" (Docker writes `"Entrypoint": null`). */
export function optionalString(value: unknown, field: string, file: string): string | undefined {
  return value === undefined || value === null ? undefined : asString(value, field, file);
}

export function optionalStringArray(value: unknown, field: string, file: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  return asArray(value, field, file).map((v, i) => asString(v, `${field}[${i}]`, file));
}

/** A byte count: a non-negative safe integer. */
export function asSize(value: unknown, field: string, file: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new GuestError('IMAGE_INVALID', `${file}: ${field} must be a non-negative integer`);
  }
  return value;
}

/**
 * A JSON value for a message, never throwing and never long: String() recurses into nested arrays
 * (a deep one overflows the stack) and throws on an object with a "toString" member.
 */
/** Items for a message: the first ten, then how many there are in all. */
export function shownList(items: string[]): string {
  if (items.length === 0) return 'none';
  return items.length > 10 ? `${items.slice(0, 10).join(', ')}, … (${items.length} in all)` : items.join(', ');
}

export function shownValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}
