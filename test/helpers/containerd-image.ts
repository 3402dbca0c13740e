// A busybox image for a private containerd (test/helpers/containerd.ts): no registry is reachable
// here, so the image is built with umoci (test/helpers/images.ts) and `ctr images import`-ed as an
// OCI archive (a tar of the OCI layout). Built once per test process, imported per containerd.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Containerd } from './containerd.js';
import { ociImage } from './images.js';
import { tempDir } from './tmp.js';

export const BUSYBOX_REF = 'docker.io/library/vc-busybox:test';

let cache: { path: string; remove(): void } | null = null;

/** `name:tag` split at the tag's colon (a registry's port colon comes before the last '/'). */
export function splitRef(ref: string): { name: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  const name = ref.slice(0, colon), tag = ref.slice(colon + 1);
  if (colon <= ref.lastIndexOf('/') || !/^[a-z0-9]+(?:[._\-/:]+[a-z0-9]+)*$/.test(name) || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) {
    throw new Error(`importBusybox: ref must be NAME:TAG (e.g. ${BUSYBOX_REF}), not ${JSON.stringify(ref)}`);
  }
  return { name, tag };
}

/** The OCI archive of a busybox image whose index names it `tag`; built on first use. */
export function busyboxArchive(tag: string): string {
  if (!cache) {
    cache = tempDir('vcimg');
    process.once('exit', () => cache?.remove());
  }
  const archive = join(cache.path, `busybox-${tag}.tar`);
  if (existsSync(archive)) return archive;
  const layout = join(cache.path, `layout-${tag}`);
  // `umoci config` after `repack` (DESIGN §11): a config with PATH and a default command, so that
  // `ctr run IMG ID` with no command line runs a shell rather than failing on an empty process.
  ociImage(cache.path, layout, tag, { env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], cmd: ['sh'] });
  execFileSync('tar', ['-C', layout, '-cf', `${archive}.partial`, '.']);
  execFileSync('mv', [`${archive}.partial`, archive]);
  return archive;
}

/**
 * Imports the busybox image into `containerd` as `ref` (unpacked for the overlayfs snapshotter);
 * returns `ref`. The layout's index carries only the tag, which ctr completes with --base-name.
 */
export async function importBusybox(containerd: Containerd, ref = BUSYBOX_REF, opts: { namespace?: string } = {}): Promise<string> {
  return importArchive(containerd, ref, busyboxArchive(splitRef(ref).tag), opts);
}

/** Imports an OCI archive whose index names its image by `ref`'s tag, as `ref`, into `opts.namespace` (default vc-test). */
export async function importArchive(containerd: Containerd, ref: string, archive: string, opts: { namespace?: string } = {}): Promise<string> {
  const { name } = splitRef(ref);
  const ns = opts.namespace ? { namespace: opts.namespace } : {};
  const r = await containerd.ctr(['images', 'import', '--base-name', name, archive], { timeoutMs: 60_000, ...ns });
  if (r.code !== 0) throw new Error(`ctr images import ${archive} as ${ref} failed (${r.code}): ${r.stderr.trim()}`);
  const list = await containerd.ctr(['images', 'ls', '-q'], ns);
  if (!list.stdout.split('\n').includes(ref)) throw new Error(`ctr images import did not make ${ref}; images: ${list.stdout.trim() || '(none)'}; import said: ${r.stdout.trim()}`);
  return ref;
}
