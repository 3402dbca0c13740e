// The image used when none is given: the host's static busybox with a link per applet, and just
// enough /etc for `id`, `ls -l` and `su` to make sense. Its digest hashes the planned entries
// (busybox bytes included), so it is known without touching the disk and a cache hit is instant.
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withDefaults } from './config.js';
import { sha256Hex } from './digest.js';
import type { ImageConfig } from './types.js';

/** Bump when the layout below changes. */
export const DEFAULT_IMAGE_VERSION = 1;

export type TreeEntry =
  | { type: 'dir'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; data: Uint8Array }
  | { type: 'symlink'; path: string; target: string };

export interface DefaultImagePlan {
  digest: string;
  entries: TreeEntry[];
  config: ImageConfig;
}

const DIRS: ReadonlyArray<[string, number]> = [
  ['bin', 0o755], ['sbin', 0o755], ['usr', 0o755], ['usr/bin', 0o755], ['usr/sbin', 0o755], ['etc', 0o755],
  ['root', 0o700], ['home', 0o755], ['tmp', 0o1777], ['var', 0o755], ['var/tmp', 0o1777],
  // Mount points the agent mounts over in the container.
  ['dev', 0o755], ['proc', 0o555], ['sys', 0o555], ['run', 0o755],
];

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\n';

export function planDefaultImage(busybox: Uint8Array, applets: readonly string[]): DefaultImagePlan {
  const entries = new Map<string, TreeEntry>();
  for (const [path, mode] of DIRS) entries.set(path, { type: 'dir', path, mode });
  entries.set('bin/busybox', { type: 'file', path: 'bin/busybox', mode: 0o755, data: busybox });
  entries.set('etc/passwd', { type: 'file', path: 'etc/passwd', mode: 0o644, data: Buffer.from(PASSWD) });
  entries.set('etc/group', { type: 'file', path: 'etc/group', mode: 0o644, data: Buffer.from(GROUP) });
  // Applet paths come from listApplets (validated: relative, no ".."); parents are added as dirs.
  for (const applet of [...applets].sort()) {
    if (entries.has(applet)) continue;
    const parts = applet.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!entries.has(dir)) entries.set(dir, { type: 'dir', path: dir, mode: 0o755 });
    }
    entries.set(applet, { type: 'symlink', path: applet, target: '/bin/busybox' });
  }
  const sorted = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const config = withDefaults({ cmd: ['sh'], workingDir: '/' });
  const description = JSON.stringify({
    version: DEFAULT_IMAGE_VERSION,
    config,
    entries: sorted.map((e) => (e.type === 'file' ? { ...e, data: sha256Hex(e.data) } : e)),
  });
  return { digest: sha256Hex(description), entries: sorted, config };
}

/** Writes planned entries below `root` (parents sort before children). */
export async function writeTree(root: string, entries: readonly TreeEntry[]): Promise<void> {
  for (const e of entries) {
    const path = join(root, e.path);
    if (e.type === 'dir') {
      await mkdir(path);
      await chmod(path, e.mode); // mkdir's mode is masked by the umask; 1777 needs chmod
    } else if (e.type === 'file') {
      await writeFile(path, e.data, { flag: 'wx' });
      await chmod(path, e.mode);
    } else {
      await symlink(e.target, path);
    }
  }
  await chmod(root, 0o755);
}
