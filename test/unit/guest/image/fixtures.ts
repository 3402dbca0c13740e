// Image fixtures built at test time (nothing binary is committed): a real OCI layout made with
// umoci from the host's static busybox, its skopeo conversions, and synthetic layouts/archives
// written here for the malicious and malformed cases.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');

export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const sh = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }).toString();

export interface RealImage {
  layout: string;
  tag: string;
  dockerArchive: string;
  ociArchive: string;
}

/**
 * Three layers, like a small real image:
 *  1. busybox, applet links, /etc, files to delete or hide later, a hardlink, owners, set-uid;
 *  2. (unpack/repack) deletes /gone — a whiteout — and adds /added;
 *  3. (umoci insert --opaque) replaces /opq: its old contents are hidden by an opaque marker.
 * Then the config: Env, Cmd, Entrypoint, WorkingDir, User.
 */
export function buildRealImage(dir: string): RealImage {
  const layout = join(dir, 'layout');
  const tag = 't';
  const image = `${layout}:${tag}`;
  sh('umoci', ['init', '--layout', layout]);
  sh('umoci', ['new', '--image', image]);

  const b1 = join(dir, 'bundle1');
  sh('umoci', ['unpack', '--image', image, b1]);
  const r = join(b1, 'rootfs');
  for (const d of ['bin', 'etc', 'keep', 'opq/sub', 'data', 'tmp']) mkdirSync(join(r, d), { recursive: true });
  copyFileSync('/bin/busybox', join(r, 'bin/busybox'));
  chmodSync(join(r, 'bin/busybox'), 0o755);
  symlinkSync('busybox', join(r, 'bin/sh'));
  symlinkSync('/bin/busybox', join(r, 'bin/ls'));
  writeFileSync(join(r, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(r, 'gone'), 'deleted by layer 2\n');
  writeFileSync(join(r, 'keep/k'), 'kept\n');
  writeFileSync(join(r, 'opq/old'), 'hidden by layer 3\n');
  writeFileSync(join(r, 'opq/sub/deep'), 'hidden by layer 3\n');
  writeFileSync(join(r, 'data/a'), 'shared inode\n');
  linkSync(join(r, 'data/a'), join(r, 'data/b'));
  writeFileSync(join(r, 'data/owned'), 'owned by 1000\n');
  chownSync(join(r, 'data/owned'), 1000, 1001);
  writeFileSync(join(r, 'data/setuid'), 'set-uid\n');
  chmodSync(join(r, 'data/setuid'), 0o4755);
  chmodSync(join(r, 'tmp'), 0o1777);
  sh('umoci', ['repack', '--image', image, b1]);

  const b2 = join(dir, 'bundle2');
  sh('umoci', ['unpack', '--image', image, b2]);
  execFileSync('rm', [join(b2, 'rootfs/gone')]);
  writeFileSync(join(b2, 'rootfs/added'), 'added by layer 2\n');
  sh('umoci', ['repack', '--image', image, b2]);

  const opq = join(dir, 'opq-new');
  mkdirSync(opq);
  writeFileSync(join(opq, 'new'), 'only this in /opq\n');
  sh('umoci', ['insert', '--image', image, '--opaque', opq, '/opq']);
  sh('umoci', ['config', '--image', image, '--config.env', 'FOO=bar', '--config.cmd', 'sh', '--config.cmd', '-c',
    '--config.cmd', 'echo hi', '--config.entrypoint', '/bin/busybox', '--config.workingdir', '/keep', '--config.user', '1000:1001']);

  // skopeo wants a policy (none is installed) and a writable temp dir.
  const env = { TMPDIR: dir };
  const dockerArchive = join(dir, 'image-docker.tar');
  const ociArchive = join(dir, 'image-oci.tar');
  sh('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci:${image}`, `docker-archive:${dockerArchive}:vctest:v1`], env);
  sh('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci:${image}`, `oci-archive:${ociArchive}:v2`], env);
  return { layout, tag, dockerArchive, ociArchive };
}

/** What the three layers leave: present and absent paths. */
export const REAL_PRESENT = ['bin/busybox', 'bin/sh', 'bin/ls', 'etc/passwd', 'keep/k', 'opq/new', 'data/a', 'data/b', 'data/owned', 'data/setuid', 'added', 'tmp'];
export const REAL_ABSENT = ['gone', 'opq/old', 'opq/sub'];

/** A stable description of a tree: one line per entry with type, mode, owner and content. */
export function listTree(root: string, rel = ''): string[] {
  const path = rel === '' ? root : join(root, rel);
  const st = lstatSync(path);
  const head = `${rel || '.'} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
  if (st.isDirectory()) {
    return [`${head} dir`, ...readdirSync(path).sort().flatMap((n) => listTree(root, rel === '' ? n : `${rel}/${n}`))];
  }
  if (st.isSymbolicLink()) return [`${head} symlink ${readlinkSync(path)}`];
  if (st.isFile()) return [`${head} file ${sha256(readFileSync(path))}`];
  return [`${head} special ${st.rdev}`];
}

/** Unpacks an erofs image with erofs-utils' own reader (no mount needed). */
export function extractErofs(image: string, dest: string): void {
  sh('fsck.erofs', [`--extract=${dest}`, image]);
}

/** The erofs inode number (nid) of a path: equal nids mean a hardlink. */
export function erofsNid(image: string, path: string): string {
  return /NID:\s*(\d+)/.exec(sh('dump.erofs', [`--path=${path}`, image]))?.[1] ?? '?';
}

/**
 * The mode of a path as stored in an erofs image. fsck.erofs 1.5 --extract drops set-uid/set-gid
 * bits (and dump.erofs prints only the 0777 part), so the inode is read directly: the on-disk
 * inode is at meta_blkaddr * block size + nid * 32, its i_mode a u16 at offset 4.
 */
export function erofsMode(image: string, path: string): number {
  const nid = Number(erofsNid(image, path));
  const data = readFileSync(image);
  const sb = 1024;
  const blockSize = 1 << data[sb + 12]!;
  return data.readUInt16LE(data.readUInt32LE(sb + 40) * blockSize + nid * 32 + 4);
}

export type TarEntry = Partial<tar.Header> & { name: string; data?: string | Buffer };

/** A tar built with tar-stream, entries exactly as given (names are not sanitized). */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const { data, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const body = data === undefined ? undefined : Buffer.from(data);
      const h = { mtime: new Date(1_700_000_000_000), ...header, ...(body ? { size: body.length } : {}) };
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pack.entry(h, body, cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface SyntheticLayout {
  dir: string;
  configDigest: string;
  manifestDigest: string;
  layerDigests: string[];
  blob(hex: string): string;
}

/**
 * An OCI layout written by hand around the given layer blobs (stored as given: gzip them first
 * for compressed layers). diff_ids are computed from the blobs unless given.
 */
export function writeOciLayout(
  dir: string,
  layers: Buffer[],
  opts: { tags?: string[]; config?: Record<string, unknown>; diffIds?: string[] } = {},
): SyntheticLayout {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const put = (data: Buffer | string) => {
    const hex = sha256(data);
    writeFileSync(join(dir, 'blobs/sha256', hex), data);
    return hex;
  };
  const layerDigests = layers.map(put);
  const diffIds = opts.diffIds ?? layers.map((l) => sha256(l[0] === 0x1f && l[1] === 0x8b ? Buffer.from(execFileSync('gzip', ['-dc'], { input: l })) : l));
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds.map((d) => `sha256:${d}`) },
    ...opts.config,
  };
  const configJson = JSON.stringify(config);
  const configDigest = put(configJson);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: Buffer.byteLength(configJson) },
    layers: layers.map((l, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigests[i]}`, size: l.length })),
  });
  const manifestDigest = put(manifest);
  const tags = opts.tags ?? ['latest'];
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: tags.map((t) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${manifestDigest}`,
      size: Buffer.byteLength(manifest),
      annotations: { 'org.opencontainers.image.ref.name': t },
    })),
  }));
  return { dir, configDigest, manifestDigest, layerDigests, blob: (hex) => join(dir, 'blobs/sha256', hex) };
}

/** A docker-archive (legacy layout: <id>/layer.tar) around the given uncompressed layers. */
export async function writeDockerArchive(
  path: string,
  layers: Buffer[],
  opts: { repoTags?: string[]; configName?: (digest: string) => string; config?: Record<string, unknown> } = {},
): Promise<string> {
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['A=1'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha256(l)}`) },
    ...opts.config,
  });
  const configDigest = sha256(config);
  const configName = opts.configName?.(configDigest) ?? `${configDigest}.json`;
  const layerNames = layers.map((_, i) => `${String(i).padStart(64, 'a')}/layer.tar`);
  const manifest = JSON.stringify([{ Config: configName, RepoTags: opts.repoTags ?? [], Layers: layerNames }]);
  writeFileSync(path, await makeTar([
    ...layers.map((l, i) => ({ name: layerNames[i]!, data: l })),
    { name: configName, data: config },
    { name: 'manifest.json', data: manifest },
  ]));
  return configDigest;
}

export const gzip = (data: Buffer) => gzipSync(data, { level: 1 });
