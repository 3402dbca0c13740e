// Tools for feeding hostile outer archives (docker-archive, oci-archive) to the archive reader and
// the manifest/index/config parsing: a small valid image as JSON documents and members, written
// byte for byte with hostile-tar.ts's rawTar, then read the way resolveImage reads it — index the
// tar, plan the image, stream every layer — with the invariants every read must keep whatever the
// archive held (docs/images-and-rootfs.md, "Rules for outer archives").
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { planDockerArchive } from '../../../../src/guest/image/docker-archive.js';
import { archiveFiles } from '../../../../src/guest/image/files.js';
import { planOciLayout } from '../../../../src/guest/image/oci.js';
import type { ImagePlan } from '../../../../src/guest/image/plan.js';
import { GuestError } from '../../../../src/guest/errors.js';
import { rawTar, type RawEntry } from './hostile-tar.js';

export const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export type Kind = 'docker-archive' | 'oci-archive';

/** The guest's architecture as OCI names it, for platform entries that must match. */
export const ARCH = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;

/** A plain one-file layer tar: its sha256 is its diff_id. */
export function layerTar(content: string): Buffer {
  return rawTar([{ name: 'etc/', type: '5', mode: 0o755 }, { name: 'etc/os-release', data: content }]);
}

/** The config of uncompressed `layers` (diff_ids are the sha256 of the plain tars). */
export function configDoc(layers: Buffer[]): Record<string, unknown> {
  return {
    architecture: ARCH,
    os: 'linux',
    config: { Env: ['A=1'], Cmd: ['sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
  };
}

/** A member before it is spelled as a tar entry. */
export interface Member { name: string; data: Buffer }

/** docker save's layout (Docker 25+ names blobs by digest; skopeo and older Docker by path). */
export function dockerMembers(layers: Buffer[], opts: { blobNames?: boolean; config?: Buffer; manifest?: (m: Record<string, unknown>[]) => unknown } = {}): Member[] {
  const config = opts.config ?? Buffer.from(JSON.stringify(configDoc(layers)));
  const layerName = (l: Buffer, i: number) => (opts.blobNames ? `blobs/sha256/${sha(l)}` : `${i}${sha(l).slice(0, 8)}/layer.tar`);
  const configName = opts.blobNames ? `blobs/sha256/${sha(config)}` : `${sha(config)}.json`;
  const manifest = [{ Config: configName, RepoTags: ['example.com/app:1'], Layers: layers.map(layerName) }];
  return [
    { name: 'manifest.json', data: Buffer.from(JSON.stringify(opts.manifest ? opts.manifest(manifest) : manifest)) },
    { name: configName, data: config },
    ...layers.map((l, i) => ({ name: layerName(l, i), data: l })),
  ];
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** An OCI layout: oci-layout, index.json, and blobs/sha256/ holding the manifest, config and layers. */
export function ociMembers(layers: Buffer[], edit: { config?: Buffer; manifest?: (m: Record<string, unknown>) => unknown; index?: (i: Record<string, unknown>) => unknown } = {}): Member[] {
  const blob = (data: Buffer) => ({ name: `blobs/sha256/${sha(data)}`, data });
  const desc = (mediaType: string, data: Buffer) => ({ mediaType, digest: `sha256:${sha(data)}`, size: data.length });
  const config = edit.config ?? Buffer.from(JSON.stringify(configDoc(layers)));
  const manifestDoc = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc('application/vnd.oci.image.config.v1+json', config), layers: layers.map((l) => desc('application/vnd.oci.image.layer.v1.tar', l)) };
  const manifest = Buffer.from(JSON.stringify(edit.manifest ? edit.manifest(manifestDoc) : manifestDoc));
  const indexDoc = { schemaVersion: 2, manifests: [{ ...desc(OCI_MANIFEST, manifest), annotations: { 'org.opencontainers.image.ref.name': 't' } }] };
  return [
    { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', data: Buffer.from(JSON.stringify(edit.index ? edit.index(indexDoc) : indexDoc)) },
    blob(manifest),
    blob(config),
    ...layers.map(blob),
  ];
}

export const asEntries = (members: Member[]): RawEntry[] => members.map((m) => ({ name: m.name, data: m.data }));

export interface Read { plan?: ImagePlan; layers?: Buffer[]; error?: unknown; ms: number }

/** Indexes the archive, plans the image and streams every layer, as resolveImage does before extracting; `timeoutMs` stuck is an error. */
export async function readArchive(path: string, kind: Kind, timeoutMs = 5000): Promise<Read> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`HANG: not done after ${timeoutMs} ms`)), timeoutMs);
  });
  const work = async () => {
    const files = await archiveFiles(path);
    const plan = kind === 'docker-archive' ? await planDockerArchive(files, undefined) : await planOciLayout(files, undefined);
    const layers: Buffer[] = [];
    for (const layer of plan.layers) {
      const chunks: Buffer[] = [];
      for await (const chunk of await layer.open()) chunks.push(chunk as Buffer);
      layers.push(Buffer.concat(chunks));
    }
    return { plan, layers };
  };
  try {
    const { plan, layers } = await Promise.race([work(), stuck]);
    return { plan, layers, ms: performance.now() - start };
  } catch (error) {
    return { error, ms: performance.now() - start };
  } finally {
    clearTimeout(timer);
  }
}

/** Codes an outer archive's own fault may have (never a host-side or unexpected one). */
export const ARCHIVE_FAULTS = ['IMAGE_INVALID', 'IMAGE_UNSAFE', 'IMAGE_UNSUPPORTED', 'IMAGE_DIGEST_MISMATCH', 'IMAGE_NOT_FOUND'];

/**
 * Every refusal the outer reader and the planners may give, by rule (docs/images-and-rootfs.md,
 * "Rules for outer archives"). A message matching none is a new failure mode to document.
 */
export const REFUSALS: Array<[rule: string, message: RegExp]> = [
  ['bad checksum', /not a valid tar archive: bad header checksum at offset \d+/],
  ['bad number field', /not a valid tar archive: (bad (size|checksum) field ".*" at offset \d+|(size|checksum) out of range at offset \d+|bad size at offset \d+)/],
  ['truncated', /not a valid tar archive: (truncated: |unexpected end of file)/],
  ['huge extended header', /not a valid tar archive: a \d+-byte extended header at offset \d+/],
  ['bad pax record', /not a valid tar archive: bad pax (record|size)/],
  ['lone zero block', /not a valid tar archive: a lone zero block at offset \d+, followed by more headers/],
  ['too many headers', /not a valid tar archive: more than \d+ headers/],
  ['names too long in all', /not a valid tar archive: member names and link targets longer than \d+ characters in all/],
  ['data on a header-only member', /not a valid tar archive: member ".*" at offset \d+ is a (hardlink|symlink|character device|block device|directory|fifo) with \d+ bytes of data/],
  ['".." in a name', /: (member|the name|the link target of ".*") ".*" contains "\.\.", outside the archive/],
  ['NUL in a name', /: (member|the name|the link target of ".*") ".*" contains a NUL byte/],
  ['link outside', /: ".*" links to ".*", outside the archive/],
  ['link loop', /: too many links resolving ".*"/],
  ['missing member', /: missing( \(the image refers to it|; not a docker-archive| \(listed in )|missing blob sha256:[0-9a-f]{64}: .* does not exist|: missing; not an OCI image layout/],
  ['metadata too large', /: \d+ bytes, more than the \d+ a metadata file may have|descriptor size \d+ is too large for a JSON document/],
  ['malformed JSON', /: malformed JSON: /],
  ['deep JSON', /: JSON nested deeper than \d+ levels/],
  ['too many JSON values', /: JSON with more than \d+ values/],
  ['wrong JSON type', /: .* must be (a JSON object|a JSON array|a string|a non-negative integer)/],
  ['bad digest', /: .* (is missing or not a string|is not a digest|is not a sha256 digest)|uses [a-z0-9+._-]+; only sha256 digests are supported/],
  ['digest mismatch', /content has sha256:[0-9a-f]{64}.*, but its (name|descriptor) says sha256:/],
  ['layer count', /rootfs\.diff_ids lists \d+ layers, (the manifest )?.* has \d+/],
  ['rootfs type', /rootfs\.type must be "layers"/],
  ['not linux', /os is .*; only linux images/],
  ['media type', /media type .* is not an image manifest/],
  ['layout version', /imageLayoutVersion .* \(only 1\.x is known\)/],
  ['image choice', /(holds no image|holds \d+ images; choose one by tag|no manifest for linux\/)/],
  ['too many layers', /: \d+ layers, more than the \d+ an image may have/],
  ['nested index', /image indexes nested too deep/],
  ['legacy archive', /pre-Docker-1\.10 archive/],
];

/** Why `error` is not an acceptable refusal of the archive at `path`, or undefined; `rule` gets the rule's name. */
export function badArchiveRefusal(error: unknown, path: string, rule: { name?: string } = {}): string | undefined {
  if (!(error instanceof GuestError)) return `not a GuestError: ${(error as Error)?.stack ?? String(error)}`;
  if (!ARCHIVE_FAULTS.includes(error.code)) return `code ${error.code}: ${error.message}`;
  if (!error.message.includes(path)) return `does not name the archive: ${error.message}`;
  if (error.message.length > 4096) return `a ${error.message.length}-character message`;
  rule.name = REFUSALS.find(([, re]) => re.test(error.message))?.[0];
  if (!rule.name) return `matches no rule: ${error.message.slice(0, 500)}`;
  return undefined;
}

/** Why a read plan is not the archive's own bytes: every layer read must be a byte range of the file. */
export function readOutside(path: string, read: Read): string | undefined {
  const archive = readFileSync(path);
  for (const [i, layer] of (read.layers ?? []).entries()) {
    if (layer.length > 0 && archive.indexOf(layer) < 0) return `layer ${i + 1} read ${layer.length} bytes that are not in the archive`;
  }
  return undefined;
}
