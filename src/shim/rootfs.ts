/**
 * The task's root filesystem on the host: containerd's snapshot mounts (an overlay of the image's
 * layers and the container's upper directory) mounted at `<bundle>/rootfs`, as runc's shim does,
 * so the directory becomes the container's image (cached by content). With `ctr run --rootfs` the
 * list is empty and the spec's root.path is used as it is.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
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
