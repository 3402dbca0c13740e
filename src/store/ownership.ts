// Who may trust a directory: the state root and the cache hold what the VMM boots and the sockets
// that control it, so a directory another user owns, or one that a group or everyone may write,
// could hand us their kernel, their records or their sockets. Such a directory is refused, never
// repaired: it may be an attacker's, and chmod on it would only hide that.
import { lstat, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';

/** The owner and mode bits of a directory, as the check needs them (a unit test builds these). */
export interface DirFacts {
  isDirectory: boolean;
  isSymlink: boolean;
  /** Owner of the path itself (the link when it is one). */
  linkUid: number;
  /** Owner and mode of what the path names (the link's target). */
  uid: number;
  mode: number;
}

const GROUP_OR_OTHER_WRITE = 0o022;

/**
 * Why `path` is not a directory this process can trust, or null when it is: it must be a directory
 * owned by `euid` and writable by nobody else (no group or other write bit); a symbolic link to it
 * must itself be ours or root's (a link in a sticky /tmp could be another user's).
 */
export function untrustedDirReason(path: string, facts: DirFacts, euid: number): string | null {
  const mode = `mode ${(facts.mode & 0o7777).toString(8).padStart(4, '0')}`;
  const wants = `it must be a directory owned by uid ${euid} (this process) that no group or other user may write`;
  if (facts.isSymlink && facts.linkUid !== euid && facts.linkUid !== 0) {
    return `${path} is a symbolic link owned by uid ${facts.linkUid}, not uid ${euid} (this process) or root`;
  }
  if (!facts.isDirectory) return `${path} is not a directory (owner uid ${facts.uid}, ${mode}); ${wants}`;
  if (facts.uid !== euid) return `${path} is owned by uid ${facts.uid}, not uid ${euid} (this process) (${mode}); ${wants}`;
  if ((facts.mode & GROUP_OR_OTHER_WRITE) !== 0) {
    const who = [facts.mode & 0o020 ? 'its group' : '', facts.mode & 0o002 ? 'everyone' : ''].filter(Boolean).join(' and ');
    return `${path} (owner uid ${facts.uid}, ${mode}) is writable by ${who}; ${wants} (chmod go-w ${path}, if you made it)`;
  }
  return null;
}

/** The facts of `path` from the filesystem; null when it does not exist. */
export async function dirFacts(path: string): Promise<DirFacts | null> {
  let link: Stats;
  try {
    link = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const target = link.isSymbolicLink() ? await stat(path).catch(() => link) : link;
  return { isDirectory: target.isDirectory(), isSymlink: link.isSymbolicLink(), linkUid: link.uid, uid: target.uid, mode: target.mode };
}

export function effectiveUid(): number {
  return process.geteuid?.() ?? 0;
}

/** Why `path` cannot be trusted (see untrustedDirReason), or null: trusted, or absent. */
export async function untrustedDir(path: string, euid = effectiveUid()): Promise<string | null> {
  try {
    const facts = await dirFacts(path);
    return facts ? untrustedDirReason(path, facts, euid) : null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return `${path} cannot be examined by uid ${euid} (this process): permission denied`;
    throw err;
  }
}
