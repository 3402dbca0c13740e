// Applies layer tar entries, in order, to a private staging directory that becomes the image's
// root. The entries are untrusted, so:
//  - names go through splitEntryName (no absolute paths, no "..");
//  - every parent component is checked with lstat and must be a real directory: a symlink in a
//    parent path is refused (IMAGE_UNSAFE), never followed, whether it points inside or outside;
//  - the final component is replaced, never written through: an existing entry is removed first
//    and files are created with O_EXCL|O_NOFOLLOW;
//  - hardlink targets are checked like names and must already exist in the staging tree.
// The full rules table (entry kind → what happens and why) is in docs/images-and-rootfs.md;
// test/unit/guest/image/layer-hostile.test.ts checks each rule and fuzzes them together.
// Whiteouts follow the OCI image spec (layer.md): ".wh.<name>" removes <name> from lower layers,
// ".wh..wh..opq" hides everything lower layers put in its directory; both hide lower layers only,
// never what the same layer writes, whatever the order of entries in the tar.
//
// Ownership needs root. Privileged (uid 0, the default when running as root): owners are
// applied. Unprivileged: owners are not applied (the image is then built --all-root), files keep
// owner read and dirs owner rwx permission, so mkfs.erofs can read them and cleanup can remove
// them. Char/block device entries are never made, privileged or not: containers get /dev from the
// agent, so an image's device node could only serve to reach a guest device (a disk, /dev/mem)
// the agent did not give the container. Fifos are made. Set-uid/set-gid bits are kept on regular
// files only (su, ping, passwd need them; the staging tree sits in a 0700 temp dir, out of other
// host users' reach); directories keep set-gid and sticky, fifos no special bit at all.
// xattrs (pax SCHILY.xattr.*) are not applied: Node cannot set them without another dependency;
// they are counted, and mkfs.erofs runs with xattrs off so none leak in from the host.
// Filesystem calls are synchronous on purpose: each is a few µs of syscall, while a promise
// round-trip through libuv's thread pool measured ~100 µs here, and an entry takes 5-8 calls — a
// 55k-entry layer extracted 3x slower with fs/promises. Entry data is still awaited chunk by chunk,
// so the event loop keeps turning between entries.
import { chmodSync, lchownSync, linkSync, mkdirSync, readdirSync, readlinkSync, rmSync, unlinkSync, utimesSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { GuestError } from '../errors.js';
import { splitEntryName } from './entry-path.js';
import { lstatOrNull, mkfifo, ownAndTime, writeFileNode, writeSymlink, type NodeMeta } from './staging-nodes.js';

/** The part of a tar header (tar-stream's shape) that extraction uses. */
export interface EntryHeader {
  name: string;
  type?: string | null;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number | null;
  mtime?: Date;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string> | null;
}

export interface StagingOptions {
  /** Apply owners and make device nodes; default: whether we run as root. */
  privileged?: boolean;
}

export interface StagingStats {
  entries: number;
  /** Char/block device entries, never made (see the top of this file). */
  skippedDevices: number;
  /** Entries whose xattrs were dropped. */
  droppedXattrs: number;
  /** Entries owned by someone other than root whose owner could not be applied (unprivileged). */
  droppedOwners: number;
}

interface DirMeta { mode: number; uid: number; gid: number; mtime: Date }

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const EPOCH = new Date(0);
/** Directories that no entry describes (the root, missing parents): what Docker gives them. */
const IMPLICIT_DIR: DirMeta = { mode: 0o755, uid: 0, gid: 0, mtime: EPOCH };
const MAX_ID = 0xfffffffe; // (uid_t)-1 means "unchanged" to chown
/**
 * Entry types whose header stands alone. Readers disagree on data after them (Go's archive/tar
 * skips it, tar-stream reads it as the entry's, or for a directory as the next header and never
 * ends the entry's stream), so a non-zero size is refused rather than guessed at.
 */
const HEADER_ONLY = new Set(['directory', 'link', 'symlink', 'character-device', 'block-device', 'fifo']);
const DIR_MODE_BITS = 0o3777; // set-gid (inherit the group) and sticky (/tmp) mean something on dirs
const FIFO_MODE_BITS = 0o777;

export class StagingTree {
  readonly stats: StagingStats = { entries: 0, skippedDevices: 0, droppedXattrs: 0, droppedOwners: 0 };
  readonly privileged: boolean;
  /** Directory metadata, applied last (children first) so later entries cannot disturb it. */
  private readonly dirs = new Map<string, DirMeta>([['', IMPLICIT_DIR]]);
  /** Paths known to be real directories (checked with lstat, or made by us). */
  private readonly knownDirs = new Set<string>(['']);
  /** What the current layer wrote, and the parents of those paths: whiteouts must spare both. */
  private readonly written = new Set<string>();
  private readonly writtenParents = new Set<string>();
  private where = 'layer';

  constructor(readonly root: string, options: StagingOptions = {}) {
    this.privileged = options.privileged ?? process.getuid?.() === 0;
  }

  /** `label` names the layer in errors ("layer 2/3 sha256:ab12… of /x/img"). */
  beginLayer(label: string): void {
    this.where = label;
    this.written.clear();
    this.writtenParents.clear();
  }

  /** Applies one entry; `data` is its content (read for regular files only). */
  async add(header: EntryHeader, data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts = splitEntryName(header.name, this.where);
    this.stats.entries++;
    try {
      // tar-stream yields null for an unparsable base-256 size, and then never ends the entry's data.
      const size = header.size === undefined ? 0 : header.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw this.invalid(header.name, `has an invalid size (${String(size)})`);
      if (size > 0 && HEADER_ONLY.has(header.type ?? '')) {
        throw this.invalid(header.name, `is a ${header.type} with ${size} bytes of data; tar readers disagree on where the next entry starts`);
      }
      const marker = parts.slice(0, -1).find((p) => p.startsWith(WHITEOUT));
      if (marker !== undefined) throw this.invalid(header.name, `is inside "${marker}", a whiteout name; whiteouts have no children`);
      const base = parts[parts.length - 1];
      if (base?.startsWith(WHITEOUT)) return await this.whiteout(parts, header.name);
      if (parts.length === 0) {
        if (header.type !== 'directory') throw this.invalid(header.name, 'names the image root but is not a directory');
        this.dirs.set('', this.dirMeta(header));
        return;
      }
      if (Object.keys(header.pax ?? {}).some((k) => k.startsWith('SCHILY.xattr.'))) this.stats.droppedXattrs++;
      this.ensureDir(parts.slice(0, -1), header.name);
      await this.create(parts, header, data);
      this.markWritten(parts);
    } catch (err) {
      // Filesystem failures (ENOSPC, EACCES...) are ours; anything else (a tar stream cut short
      // while we read an entry's data) is the layer's, and the caller reports it as such.
      if (err instanceof GuestError || typeof (err as NodeJS.ErrnoException).syscall !== 'string') throw err;
      throw new GuestError('IMAGE_BUILD_FAILED', `${this.where}: entry "${header.name}": ${(err as Error).message}`, { cause: err });
    }
  }

  /** Sets directory owners, modes and times, deepest first (a child's change does not touch them). */
  async finish(): Promise<void> {
    const depth = (rel: string) => (rel === '' ? 0 : rel.split('/').length);
    for (const [rel, meta] of [...this.dirs].sort((a, b) => depth(b[0]) - depth(a[0]))) {
      const path = join(this.root, rel);
      if (!lstatOrNull(path)?.isDirectory()) continue;
      if (this.privileged) lchownSync(path, meta.uid, meta.gid);
      chmodSync(path, this.privileged ? meta.mode : meta.mode | 0o700);
      utimesSync(path, meta.mtime, meta.mtime);
    }
  }

  private async create(parts: string[], header: EntryHeader, data: AsyncIterable<Uint8Array>): Promise<void> {
    const rel = parts.join('/');
    const path = join(this.root, rel);
    const meta: NodeMeta = { mode: (header.mode ?? 0) & 0o7777, ...this.owner(header), mtime: validTime(header.mtime), privileged: this.privileged };
    switch (header.type) {
      case 'directory': {
        const st = lstatOrNull(path);
        if (st && !st.isDirectory()) unlinkSync(path);
        if (!st?.isDirectory()) mkdirSync(path, 0o700);
        this.knownDirs.add(rel);
        this.dirs.set(rel, this.dirMeta(header));
        return;
      }
      case 'file':
      case 'contiguous-file':
      case undefined: {
        this.remove(rel);
        return writeFileNode(path, data, meta);
      }
      case 'symlink': {
        const target = header.linkname ?? '';
        if (target === '' || target.includes('\0') || Buffer.byteLength(target) > 4095) {
          throw this.invalid(header.name, 'is a symlink with an empty, NUL-containing or overlong target');
        }
        this.remove(rel);
        return writeSymlink(path, target, meta);
      }
      case 'link': {
        const targetParts = splitEntryName(header.linkname ?? '', `${this.where}: hardlink "${header.name}"`);
        const targetRel = targetParts.join('/');
        if (targetRel === rel) return; // a link to itself changes nothing
        if (targetRel.startsWith(`${rel}/`)) throw this.invalid(header.name, `is a hardlink to "${header.linkname}", below itself`);
        const targetPath = join(this.root, targetRel);
        const target = targetParts.length > 0 && this.existingDir(targetParts.slice(0, -1), header.name) ? lstatOrNull(targetPath) : null;
        if (!target) throw this.invalid(header.name, `is a hardlink to "${header.linkname}", which is not in the image (hardlinks must point to entries already extracted)`);
        if (target.isDirectory()) throw this.invalid(header.name, `is a hardlink to the directory "${header.linkname}"`);
        this.remove(rel);
        // link(2) does not follow a symlink target: the new name shares the entry itself.
        linkSync(targetPath, path);
        return;
      }
      case 'character-device':
      case 'block-device':
        // Never made (see the top of this file); like any entry it replaces what lower layers had.
        this.remove(rel);
        this.stats.skippedDevices++;
        return;
      case 'fifo': {
        this.remove(rel);
        const fifo = { ...meta, mode: meta.mode & FIFO_MODE_BITS };
        await mkfifo(path, fifo.mode);
        return ownAndTime(path, fifo);
      }
      default:
        throw new GuestError('IMAGE_UNSUPPORTED', `${this.where}: entry "${header.name}" has a tar entry type we do not handle (${header.type ?? 'unknown'}; e.g. GNU sparse files)`);
    }
  }

  private async whiteout(parts: string[], name: string): Promise<void> {
    const dirParts = parts.slice(0, -1);
    const base = parts[parts.length - 1]!;
    if (base === OPAQUE) {
      this.ensureDir(dirParts, name);
      this.hideLower(dirParts.join('/'));
      this.markWritten(dirParts);
      return;
    }
    if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return; // other ".wh..wh.*" are AUFS bookkeeping, not content
    const victim = base.slice(WHITEOUT.length);
    if (victim === '' || victim === '.' || victim === '..') throw new GuestError('IMAGE_UNSAFE', `${this.where}: whiteout "${name}" names no entry`);
    const rel = [...dirParts, victim].join('/');
    if (this.written.has(rel)) return;
    // A missing parent means there is nothing below to hide.
    if (!this.existingDir(dirParts, name)) return;
    // This layer also put entries below it: those stay, what lower layers put there goes.
    if (this.writtenParents.has(rel)) {
      if (lstatOrNull(join(this.root, rel))?.isDirectory()) this.hideLower(rel);
      return;
    }
    this.remove(rel);
  }

  /** Removes what lower layers left under `rel`, keeping what the current layer wrote. */
  private hideLower(rel: string): void {
    for (const name of readdirSync(join(this.root, rel))) {
      const child = rel === '' ? name : `${rel}/${name}`;
      if (!this.written.has(child) && !this.writtenParents.has(child)) this.remove(child);
      else if (lstatOrNull(join(this.root, child))?.isDirectory()) this.hideLower(child);
    }
  }

  private markWritten(parts: string[]): void {
    this.written.add(parts.join('/'));
    for (let i = 0; i < parts.length; i++) this.writtenParents.add(parts.slice(0, i).join('/'));
  }

  /** Makes sure `parts` is a chain of real directories, creating missing ones. */
  private ensureDir(parts: string[], entry: string): void {
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.knownDirs.has(rel)) continue;
      const st = this.checkedDir(rel, entry);
      if (!st) {
        mkdirSync(join(this.root, rel), 0o700);
        this.dirs.set(rel, IMPLICIT_DIR);
      }
      this.knownDirs.add(rel);
    }
  }

  /** Whether `parts` is an existing chain of real directories (a symlink on the way is an error). */
  private existingDir(parts: string[], entry: string): boolean {
    for (let i = 1; i <= parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.knownDirs.has(rel)) continue;
      if (!this.checkedDir(rel, entry)) return false;
      this.knownDirs.add(rel);
    }
    return true;
  }

  /** lstat of a parent directory: undefined when missing, an error unless it is a real directory. */
  private checkedDir(rel: string, entry: string): Stats | undefined {
    const path = join(this.root, rel);
    const st = lstatOrNull(path);
    if (st?.isSymbolicLink()) {
      const target = readlinkSync(path);
      throw new GuestError('IMAGE_UNSAFE', `${this.where}: entry "${entry}" goes through "${rel}", a symlink (to ${target}); extracting through symlinks could write outside the image`);
    }
    if (st && !st.isDirectory()) throw this.invalid(entry, `needs "${rel}" to be a directory, but an earlier entry made it a file`);
    return st ?? undefined;
  }

  /** Removes whatever is at `rel` (a directory with all its contents). */
  private remove(rel: string): void {
    const path = join(this.root, rel);
    const st = lstatOrNull(path);
    if (!st) return;
    if (!st.isDirectory()) return unlinkSync(path);
    // fs.rm uses lstat throughout: it removes symlinks, never what they point to.
    rmSync(path, { recursive: true, force: true });
    this.knownDirs.clear();
    this.knownDirs.add('');
    for (const key of [...this.dirs.keys()]) if (key === rel || key.startsWith(`${rel}/`)) this.dirs.delete(key);
  }

  private owner(header: EntryHeader): { uid: number; gid: number } {
    // pax records carry ids too large for the octal header fields.
    const uid = header.pax?.uid !== undefined ? Number(header.pax.uid) : header.uid ?? 0;
    const gid = header.pax?.gid !== undefined ? Number(header.pax.gid) : header.gid ?? 0;
    for (const [what, id] of [['uid', uid], ['gid', gid]] as const) {
      if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) throw this.invalid(header.name, `has an invalid ${what} (${id})`);
    }
    if (!this.privileged && (uid !== 0 || gid !== 0)) this.stats.droppedOwners++;
    return { uid, gid };
  }

  private dirMeta(header: EntryHeader): DirMeta {
    return { mode: (header.mode ?? 0o755) & DIR_MODE_BITS, ...this.owner(header), mtime: validTime(header.mtime) };
  }

  private invalid(entry: string, what: string): GuestError {
    return new GuestError('IMAGE_INVALID', `${this.where}: entry "${entry}" ${what}`);
  }
}

/** A base-256 mtime can be beyond what a Date holds; utimes(2) refuses those, so they become the epoch. */
function validTime(mtime: Date | undefined): Date {
  return mtime && Number.isFinite(mtime.getTime()) ? mtime : EPOCH;
}
