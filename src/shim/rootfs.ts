/**
 * The task's root filesystem on the host: containerd's snapshot mounts (an overlay of the image's
 * layers and the container's upper directory) mounted at `<bundle>/rootfs`, as runc's shim does,
 * so the directory becomes the container's image (cached by content). With `ctr run --rootfs` the
 * list is empty and the spec's root.path is used as it is.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Mount } from './proto/task.js';
import { RpcError, StatusCode } from './ttrpc/errors.js';

const run = promisify(execFile);

export function bundleRootfs(bundle: string): string {
  return join(bundle, 'rootfs');
}

export async function mountRootfs(bundle: string, mounts: readonly Mount[]): Promise<boolean> {
  if (mounts.length === 0) return false;
  const target = bundleRootfs(bundle);
  await mkdir(target, { recursive: true });
  for (const [i, m] of mounts.entries()) {
    if (!['overlay', 'bind', 'rbind', 'none'].includes(m.type) && !m.options.includes('bind')) {
      throw new RpcError(StatusCode.InvalidArgument, `rootfs[${i}].type: ${JSON.stringify(m.type)} is not supported (overlay or bind snapshots)`);
    }
    const type = m.type === 'rbind' || m.type === 'none' ? 'bind' : m.type;
    const args = type === 'bind' ? ['--bind', m.source, target] : ['-t', type, m.source || type, target];
    const options = m.options.filter((o) => o !== 'bind' && o !== 'rbind');
    if (options.length) args.push('-o', options.join(','));
    try {
      await run('mount', args);
    } catch (err) {
      throw new RpcError(StatusCode.Internal, `mounting rootfs[${i}] (${m.type} ${m.source}) at ${target}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
    }
  }
  return true;
}

/**
 * A cache key for the image the rootfs becomes, when containerd's mounts make it a pure function of
 * committed snapshots: one overlay whose upper directory is still empty. Committed snapshot
 * directories never change; each is named with its inode and birth time too, so a snapshot id a
 * wiped containerd root hands out again cannot match an old image.
 */
export async function snapshotCacheKey(mounts: readonly Mount[]): Promise<string | undefined> {
  if (mounts.length !== 1 || mounts[0]!.type !== 'overlay') return undefined;
  const option = (name: string) => mounts[0]!.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
  const lower = option('lowerdir');
  const upper = option('upperdir');
  if (!lower) return undefined;
  try {
    if (upper && (await readdir(upper)).length > 0) return undefined;
    const parts: string[] = [];
    for (const dir of lower.split(':')) {
      const st = await stat(dir, { bigint: true });
      parts.push(`${dir}@${st.dev}:${st.ino}:${st.birthtimeNs || st.ctimeNs}`);
    }
    return `containerd-overlay ${parts.join(' ')}`;
  } catch {
    return undefined; // something moved under us: hash the tree instead
  }
}

/** Unmounts what mountRootfs mounted; nothing mounted there is fine. */
export async function unmountRootfs(bundle: string): Promise<void> {
  const target = bundleRootfs(bundle);
  for (let i = 0; i < 4 && (await isMountPoint(target)); i++) {
    await run('umount', [target]).catch(() => run('umount', ['-l', target]));
  }
}

async function isMountPoint(path: string): Promise<boolean> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const escaped = path.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\t/g, '\\011').replace(/\n/g, '\\012');
  return mounts.split('\n').some((line) => line.split(' ')[4] === escaped);
}
