// Tools for feeding hostile layers to the layer reader: a raw tar writer that writes any header,
// however malformed (tar-stream's pack refuses most of them), a seeded PRNG, a sandbox with an
// "outside" next to the extraction root, and the invariants every extraction must keep whatever
// the layer held (docs/images-and-rootfs.md, "Rules for layer entries").
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { GuestError } from '../../../../src/guest/errors.js';
import { applyLayer, type LayerSource } from '../../../../src/guest/image/layer.js';
import { StagingTree } from '../../../../src/guest/image/staging.js';

type Bytes = string | Buffer;

/** One tar entry as written byte for byte; extended headers (pax, GNU long names) go before it. */
export interface RawEntry {
  /** The 100-byte name field (cut to fit). */
  name: Bytes;
  /** The type flag; '0' (a file) when absent. */
  type?: string;
  data?: Bytes;
  /** The declared size when it is not the data's (a number, or the raw 12-byte field). */
  size?: number | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds, or the raw 12-byte field. */
  mtime?: number | Buffer;
  linkname?: Bytes;
  devmajor?: number;
  devminor?: number;
  prefix?: Bytes;
  magic?: 'ustar' | 'gnu' | 'v7';
  pax?: Record<string, Bytes>;
  longName?: Bytes;
  longLink?: Bytes;
  badChecksum?: boolean;
}

const bytes = (b: Bytes) => (typeof b === 'string' ? Buffer.from(b) : b);

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  if (value >= 0 && value < 8 ** (width - 1)) {
    buf.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, 'latin1');
    return;
  }
  // GNU base-256: the high bit of the first byte set, big-endian two's complement below it.
  let v = BigInt(value);
  for (let i = width - 1; i > 0; i--) {
    buf[offset + i] = Number(BigInt.asUintN(8, v));
    v >>= 8n;
  }
  buf[offset] = value < 0 ? 0xff : 0x80;
}

function header(e: RawEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  bytes(e.name).copy(h, 0, 0, 100);
  octal(h, 100, 8, e.mode ?? 0o644);
  octal(h, 108, 8, e.uid ?? 0);
  octal(h, 116, 8, e.gid ?? 0);
  if (Buffer.isBuffer(e.size)) e.size.copy(h, 124, 0, 12);
  else octal(h, 124, 12, e.size ?? size);
  if (Buffer.isBuffer(e.mtime)) e.mtime.copy(h, 136, 0, 12);
  else octal(h, 136, 12, e.mtime ?? 1_700_000_000);
  h.write(e.type ?? '0', 156, 'latin1');
  if (e.linkname !== undefined) bytes(e.linkname).copy(h, 157, 0, 100);
  const magic = e.magic ?? 'ustar';
  if (magic === 'ustar') h.write('ustar\x0000', 257, 'latin1');
  if (magic === 'gnu') h.write('ustar  \x00', 257, 'latin1');
  octal(h, 329, 8, e.devmajor ?? 0);
  octal(h, 337, 8, e.devminor ?? 0);
  if (e.prefix !== undefined) bytes(e.prefix).copy(h, 345, 0, 155);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  if (e.badChecksum) sum += 1;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** "<length> <key>=<value>\n", the length counting itself. */
export function paxRecords(records: Record<string, Bytes>): Buffer {
  return Buffer.concat(Object.entries(records).map(([key, value]) => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), bytes(value), Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  }));
}

function block(e: RawEntry): Buffer {
  const data = bytes(e.data ?? '');
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header(e, data.length), data, pad]);
}

/** A tar of `entries`; `end: false` leaves out the two zero blocks. */
export function rawTar(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.longName !== undefined) parts.push(block({ name: '././@LongLink', type: 'L', magic: 'gnu', data: Buffer.concat([bytes(e.longName), Buffer.from([0])]) }));
    if (e.longLink !== undefined) parts.push(block({ name: '././@LongLink', type: 'K', magic: 'gnu', data: Buffer.concat([bytes(e.longLink), Buffer.from([0])]) }));
    if (e.pax !== undefined) parts.push(block({ name: 'PaxHeader', type: 'x', data: paxRecords(e.pax) }));
    parts.push(block(e));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** mulberry32: small, seedable, good enough to pick test cases. */
export function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)]!,
  };
}
export type Prng = ReturnType<typeof prng>;

/**
 * <top>/l1/l2/root is where layers go; <top>/l1/l2/outside holds files an escape would touch.
 * Names with up to three ".." (and symlinks with as many) stay inside <top>, which is checked whole.
 */
export interface Sandbox { top: string; root: string; outside: string }

export function makeSandbox(top: string): Sandbox {
  const l2 = join(top, 'l1/l2');
  const root = join(l2, 'root');
  const outside = join(l2, 'outside');
  mkdirSync(join(outside, 'dir'), { recursive: true });
  mkdirSync(root, { mode: 0o700 });
  writeFileSync(join(outside, 'keep'), 'keep');
  writeFileSync(join(outside, 'dir/inner'), 'inner');
  return { top, root, outside };
}

/** Everything in the sandbox but the root: names, kinds, modes, owners, link counts, times, content. */
export function snapshotOutside(box: Sandbox): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    if (path === box.root) return void out.push('/root (not compared)');
    const st = lstatSync(path);
    const content = st.isFile() ? createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16) : '';
    out.push(`${path.slice(box.top.length)} ${st.mode.toString(8)} ${st.uid}:${st.gid} n${st.nlink} ${st.size} ${st.mtimeMs} ${content}`);
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name));
  };
  walk(box.top);
  return out;
}

/**
 * What may be in an extracted tree, whatever the layer held: no char or block device; set-uid and
 * set-gid only on regular files (and set-gid on directories); no special bit on a fifo; no
 * whiteout name. Returns the broken rules, one line each.
 */
export function treeViolations(root: string): string[] {
  const bad: string[] = [];
  const walk = (rel: string) => {
    const path = rel === '' ? root : join(root, rel);
    const st = lstatSync(path);
    const special = st.mode & 0o7000;
    if (st.isCharacterDevice() || st.isBlockDevice()) bad.push(`${rel}: a device node`);
    if (st.isFIFO() && special) bad.push(`${rel}: a fifo with mode ${(st.mode & 0o7777).toString(8)}`);
    if (st.isDirectory() && special & 0o4000) bad.push(`${rel}: a set-uid directory`);
    if (!st.isFile() && !st.isDirectory() && !st.isFIFO() && !st.isSymbolicLink()) bad.push(`${rel}: an unexpected kind (${st.mode.toString(8)})`);
    if (rel.split('/').pop()!.startsWith('.wh.')) bad.push(`${rel}: a whiteout name in the tree`);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(rel === '' ? name : `${rel}/${name}`);
  };
  walk('');
  return bad;
}

/** A layer with the digests of `blob` (gzip-compressed or a plain tar), so only its content can be wrong. */
export function layerOf(blob: Buffer, label = 'layer test'): LayerSource {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const hex = sha(blob);
  const diffId = blob[0] === 0x1f && blob[1] === 0x8b ? sha(gunzipSync(blob)) : hex;
  return { label, open: async () => Readable.from([blob]), digest: hex, size: blob.length, diffId };
}

export interface Outcome { tree?: StagingTree; error?: unknown; ms: number }

/** Applies the layers in order and finishes the tree; an error ends it. A layer stuck for `timeoutMs` is an error too. */
export async function extract(root: string, layers: Buffer[], privileged: boolean, timeoutMs = 5000): Promise<Outcome> {
  const start = performance.now();
  const tree = new StagingTree(root, { privileged });
  let timer: NodeJS.Timeout | undefined;
  try {
    for (const [i, blob] of layers.entries()) {
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`HANG: layer ${i + 1} not done after ${timeoutMs} ms`)), timeoutMs);
      });
      await Promise.race([applyLayer(tree, layerOf(blob, `layer ${i + 1}/${layers.length}`)), stuck]);
      clearTimeout(timer);
    }
    await tree.finish();
    return { tree, ms: performance.now() - start };
  } catch (error) {
    clearTimeout(timer);
    return { error, ms: performance.now() - start };
  }
}

/** Codes an image's own fault may have; IMAGE_BUILD_FAILED would blame the host for the image's bytes. */
export const IMAGE_FAULTS = ['IMAGE_INVALID', 'IMAGE_UNSAFE', 'IMAGE_UNSUPPORTED'];

/** Why `error` is not an acceptable refusal (a GuestError with an image code naming an entry), or undefined. */
export function badRefusal(error: unknown): string | undefined {
  if (!(error instanceof GuestError)) return `not a GuestError: ${(error as Error)?.stack ?? String(error)}`;
  if (!IMAGE_FAULTS.includes(error.code)) return `code ${error.code}: ${error.message}`;
  if (!/(entry|whiteout|hardlink) "|before the first entry/.test(error.message)) return `names no entry: ${error.message}`;
  return undefined;
}

export function removeSandbox(box: Sandbox): void {
  rmSync(box.top, { recursive: true, force: true });
}
