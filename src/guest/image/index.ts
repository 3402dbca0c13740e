// Container images on the host: any supported source becomes a read-only erofs disk in the cache,
// named by digest and shared by every pod (DESIGN.md §5, "Rootfs of containers").
//
//   source ─▶ plan (digest + config + layers; JSON only) ─▶ cache hit? ─▶ done
//                                                          └─ miss ─▶ staging tree (layers applied,
//                                                             verified) ─▶ mkfs.erofs ─▶ publish
//
// The staging tree lives in a private temp dir under <cache>/images and is removed afterwards,
// whatever happens; any error (bad digest, unsafe entry, truncated tar...) leaves no cache entry.
import { chmod, lstat, mkdir, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { findBusybox } from '../busybox.js';
import { cacheDir, makeTempDir, removeStaleTemps, trustedCacheDir } from '../cache.js';
import { GuestError } from '../errors.js';
import { throwIfAborted } from '../../errors.js';
import { withDefaults } from './config.js';
import { planDefaultImage, writeTree } from './default-image.js';
import { hashDirectory, keyedDirectoryDigest, resolveDirectory } from './dir-source.js';
import { planDockerArchive } from './docker-archive.js';
import { archiveFiles, directoryFiles, type ImageFiles } from './files.js';
import { buildErofs, describeSource, lookupImage, publishImage, type ImageRecord } from './image-cache.js';
import { applyLayer } from './layer.js';
import { planOciLayout } from './oci.js';
import { shortDigest, type ImagePlan } from './plan.js';
import { StagingTree } from './staging.js';
import type { ImageConfig, ImageSource, PreparedImage, ResolveImageOptions } from './types.js';

export type { ImageConfig, ImageSource, PreparedImage, ResolveImageOptions } from './types.js';
export { parseImageRef } from './ref.js';
export { cachedImages, removeImage, type CachedImage } from './image-cache.js';

/** Where built images live: <cache>/images. */
export function imagesDirOf(cache = cacheDir()): string {
  return join(cache, 'images');
}

export async function resolveImage(source: ImageSource, opts: ResolveImageOptions = {}): Promise<PreparedImage> {
  const imagesDir = imagesDirOf(await trustedCacheDir(opts.cacheDir));
  const progress = (msg: string) => opts.onProgress?.(`image: ${msg}`);
  const signal = opts.signal;
  throwIfAborted(signal, 'image');
  await removeStaleTemps(imagesDir);
  // On a hit the config comes from the source just read (the same JSON), not from the record.
  const hit = async (digest: string, config: ImageConfig) => {
    const cached = await lookupImage(imagesDir, digest);
    if (!cached) return undefined;
    progress(`${shortDigest(digest)} is cached (${cached.diskPath})`);
    return { ...cached, config };
  };
  const build = (digest: string, config: ImageConfig, fill: (temp: string) => Promise<BuiltTree>) =>
    buildImage(imagesDir, { digest, config, source: describeSource(source) }, fill, progress, signal);

  switch (source.kind) {
    case 'default': {
      const busybox = await findBusybox({ cacheDir: opts.cacheDir, onProgress: opts.onProgress, signal });
      const plan = planDefaultImage(await readFile(busybox.path), busybox.applets);
      // Always --all-root: these files are ours, and root owns them in the image whoever builds it.
      return (await hit(plan.digest, plan.config)) ?? build(plan.digest, plan.config, async (temp) => {
        const tree = join(temp, 'rootfs');
        await mkdir(tree);
        await writeTree(tree, plan.entries);
        return { tree, allRoot: true };
      });
    }
    case 'dir': {
      const root = await resolveDirectory(source.path);
      let digest: string;
      if (source.cacheKey !== undefined) {
        digest = keyedDirectoryDigest(source.cacheKey);
      } else {
        progress(`hashing ${root}`);
        digest = await hashDirectory(root, signal);
      }
      // Built in place: the tree is the caller's, with the owners it has.
      const config = withDefaults({});
      return (await hit(digest, config)) ?? build(digest, config, async () => ({ tree: root, allRoot: false }));
    }
    case 'oci':
    case 'oci-archive':
    case 'docker-archive': {
      const files = await openImageFiles(source);
      const plan: ImagePlan = source.kind === 'docker-archive'
        ? await planDockerArchive(files, source.tag)
        : await planOciLayout(files, source.tag);
      return (await hit(plan.digest, plan.config)) ?? build(plan.digest, plan.config, (temp) => extractLayers(plan, temp, progress, signal));
    }
    default:
      throw new GuestError('INVALID_OPTION', `image source: unknown kind "${(source as { kind?: unknown }).kind}"`);
  }
}

interface BuiltTree { tree: string; allRoot: boolean }

async function openImageFiles(source: Extract<ImageSource, { path: string }>): Promise<ImageFiles> {
  let st;
  try {
    st = await stat(source.path);
  } catch (err) {
    throw new GuestError('IMAGE_NOT_FOUND', `${source.kind}:${source.path}: ${(err as Error).message}`, { cause: err });
  }
  if (source.kind === 'oci') {
    if (!st.isDirectory()) throw new GuestError('IMAGE_INVALID', `${source.path}: not a directory (an OCI layout is one; for a tar of it use oci-archive:)`);
    return directoryFiles(source.path);
  }
  if (!st.isFile()) throw new GuestError('IMAGE_INVALID', `${source.path}: not a file (a ${source.kind} is a tar file)`);
  return archiveFiles(source.path);
}

/** Applies the layers, bottom first, into <temp>/rootfs. */
async function extractLayers(plan: ImagePlan, temp: string, progress: (m: string) => void, signal?: AbortSignal): Promise<BuiltTree> {
  const root = join(temp, 'rootfs');
  await mkdir(root, { mode: 0o700 });
  const tree = new StagingTree(root);
  for (const layer of plan.layers) {
    progress(`applying ${layer.label}`);
    await applyLayer(tree, layer, signal);
    // Keep the temp dir young: removeStaleTemps in another process must not take it mid-build.
    const now = new Date();
    await utimes(temp, now, now);
  }
  await tree.finish();
  const { entries, droppedXattrs, skippedDevices, droppedOwners } = tree.stats;
  progress(`${entries} entries in ${plan.layers.length} layers`);
  if (droppedXattrs) progress(`${droppedXattrs} entries had xattrs (e.g. file capabilities); they are not kept`);
  if (skippedDevices) progress(`${skippedDevices} device nodes skipped (never made from an image; containers get /dev from the agent)`);
  if (droppedOwners) progress(`${droppedOwners} entries owned by non-root users; not running as root, the image is built all-root`);
  return { tree: root, allRoot: !tree.privileged };
}

async function buildImage(
  imagesDir: string,
  record: Pick<ImageRecord, 'digest' | 'config' | 'source'>,
  fill: (temp: string) => Promise<BuiltTree>,
  progress: (m: string) => void,
  signal?: AbortSignal,
): Promise<PreparedImage> {
  // 0700 (mkdtemp): set-id files of the staging tree are out of other users' reach.
  const temp = await makeTempDir(imagesDir, `image-${record.digest.slice(0, 12)}`);
  try {
    const { tree, allRoot } = await fill(temp);
    throwIfAborted(signal, 'image');
    progress(`building ${shortDigest(record.digest)} with mkfs.erofs`);
    const out = join(temp, 'image.erofs');
    await buildErofs(tree, out, record.digest, allRoot, signal);
    const image = await publishImage(imagesDir, out, { ...record, ownership: allRoot ? 'all-root' : 'kept' });
    progress(`${shortDigest(record.digest)} ready: ${image.diskPath} (${image.sizeBytes} bytes)`);
    return image;
  } finally {
    await removeTree(temp);
  }
}

/** rm -rf that also works unprivileged on trees holding directories without write permission. */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch {
    await makeWritable(path).catch(() => {});
    await rm(path, { recursive: true, force: true }).catch(() => {});
  }
}

async function makeWritable(path: string): Promise<void> {
  if (!(await lstat(path)).isDirectory()) return;
  await chmod(path, 0o700);
  for (const name of await readdir(path)) await makeWritable(join(path, name));
}
