// OCI image layouts (image-spec image-layout.md), as a directory or inside an oci-archive tar:
// oci-layout, index.json → manifest (by tag) → config + layers, all content-addressed under
// blobs/sha256/. Every blob read is checked against its descriptor's digest and size.
import { GuestError } from '../errors.js';
import { parseImageConfig } from './config.js';
import { parseDigest, sha256Hex } from './digest.js';
import type { ImageFiles } from './files.js';
import { asArray, asObject, asSize, asString, optionalString, parseJson, shownList, shownValue, type JsonObject } from './json.js';
import { checkLayerCount, layerLabel, MAX_JSON_BYTES, type ImagePlan } from './plan.js';

const REF_NAME = 'org.opencontainers.image.ref.name';
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);

interface Descriptor {
  mediaType: string | undefined;
  digest: string;
  size: number;
  annotations: Record<string, unknown>;
  platform: JsonObject | undefined;
}

export async function planOciLayout(files: ImageFiles, tag: string | undefined): Promise<ImagePlan> {
  const layoutFile = files.describe('oci-layout');
  if ((await files.size('oci-layout')) === undefined) {
    throw new GuestError('IMAGE_INVALID', `${layoutFile}: missing; not an OCI image layout`);
  }
  const layout = asObject(parseJson(await files.read('oci-layout', MAX_JSON_BYTES), layoutFile), 'oci-layout', layoutFile);
  const version = asString(layout.imageLayoutVersion, 'imageLayoutVersion', layoutFile);
  if (!version.startsWith('1.')) throw new GuestError('IMAGE_UNSUPPORTED', `${layoutFile}: imageLayoutVersion ${shownValue(version)} (only 1.x is known)`);

  const indexFile = files.describe('index.json');
  const index = asObject(parseJson(await files.read('index.json', MAX_JSON_BYTES), indexFile), 'index.json', indexFile);
  const entries = asArray(index.manifests, 'manifests', indexFile).map((d, i) => descriptor(d, `manifests[${i}]`, indexFile));
  let chosen = selectByTag(entries, tag, indexFile);
  // A multi-platform image: the tag names an index; take the entry for the guest's platform.
  for (let depth = 0; chosen.mediaType !== undefined && INDEX_TYPES.has(chosen.mediaType); depth++) {
    if (depth >= 4) throw new GuestError('IMAGE_INVALID', `${indexFile}: image indexes nested too deep`);
    const nestedFile = files.describe(blobName(chosen.digest));
    const nested = asObject(parseJson(await readBlob(files, chosen), nestedFile), 'the index', nestedFile);
    chosen = selectPlatform(asArray(nested.manifests, 'manifests', nestedFile).map((d, i) => descriptor(d, `manifests[${i}]`, nestedFile)), nestedFile);
  }

  const manifestFile = files.describe(blobName(chosen.digest));
  const manifest = asObject(parseJson(await readBlob(files, chosen), manifestFile), 'the manifest', manifestFile);
  const mediaType = optionalString(manifest.mediaType, 'mediaType', manifestFile) ?? chosen.mediaType;
  if (mediaType !== undefined && !MANIFEST_TYPES.has(mediaType)) {
    throw new GuestError('IMAGE_UNSUPPORTED', `${manifestFile}: media type ${shownValue(mediaType)} is not an image manifest`);
  }
  const configDesc = descriptor(manifest.config, 'config', manifestFile);
  const layerDescs = asArray(manifest.layers, 'layers', manifestFile).map((d, i) => descriptor(d, `layers[${i}]`, manifestFile));
  checkLayerCount(layerDescs.length, manifestFile);

  const configFile = files.describe(blobName(configDesc.digest));
  const { config, diffIds } = parseImageConfig(await readBlob(files, configDesc), configFile);
  if (diffIds.length !== layerDescs.length) {
    throw new GuestError('IMAGE_INVALID', `${configFile}: rootfs.diff_ids lists ${diffIds.length} layers, the manifest ${manifestFile} has ${layerDescs.length}`);
  }
  const layers = layerDescs.map((d, i) => {
    const name = blobName(d.digest);
    return {
      label: layerLabel(i, layerDescs.length, d.digest, files, name),
      open: () => files.open(name),
      digest: d.digest,
      size: d.size,
      diffId: diffIds[i]!,
    };
  });
  // Fail before any extraction if a layer blob is not there at all.
  for (const d of layerDescs) if ((await files.size(blobName(d.digest))) === undefined) throw missingBlob(files, d);
  return { digest: configDesc.digest, config, layers };
}

function blobName(hex: string): string {
  return `blobs/sha256/${hex}`;
}

function descriptor(value: unknown, field: string, file: string): Descriptor {
  const d = asObject(value, field, file);
  return {
    mediaType: optionalString(d.mediaType, `${field}.mediaType`, file),
    digest: parseDigest(d.digest, `${field}.digest`, file),
    size: asSize(d.size, `${field}.size`, file),
    annotations: d.annotations === undefined ? {} : asObject(d.annotations, `${field}.annotations`, file),
    platform: d.platform === undefined ? undefined : asObject(d.platform, `${field}.platform`, file),
  };
}

function selectByTag(entries: Descriptor[], tag: string | undefined, indexFile: string): Descriptor {
  const tagOf = (d: Descriptor) => (typeof d.annotations[REF_NAME] === 'string' ? (d.annotations[REF_NAME] as string) : undefined);
  const tags = [...new Set(entries.map(tagOf).filter((t): t is string => t !== undefined))];
  const listed = shownList(tags.map(shownValue));
  if (tag === undefined) {
    if (entries.length === 1) return entries[0]!;
    if (entries.length === 0) throw new GuestError('IMAGE_NOT_FOUND', `${indexFile}: the layout holds no image`);
    throw new GuestError('IMAGE_NOT_FOUND', `${indexFile}: the layout holds ${entries.length} images; choose one by tag (tags: ${listed})`);
  }
  const matching = entries.filter((d) => tagOf(d) === tag);
  if (matching.length === 0) throw new GuestError('IMAGE_NOT_FOUND', `${indexFile}: no image tagged "${tag}" (tags: ${listed})`);
  return matching.length === 1 ? matching[0]! : selectPlatform(matching, `${indexFile} (tag "${tag}")`);
}

/** The manifest for linux on the host's architecture (the guest runs the host's). */
function selectPlatform(entries: Descriptor[], file: string): Descriptor {
  const arch = ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  const found = entries.find((d) => d.platform?.os === 'linux' && d.platform?.architecture === arch);
  if (found) return found;
  const word = (v: unknown) => (typeof v === 'string' ? v.slice(0, 100) : shownValue(v));
  const offered = shownList(entries.map((d) => `${word(d.platform?.os)}/${word(d.platform?.architecture)}`));
  throw new GuestError('IMAGE_NOT_FOUND', `${file}: no manifest for linux/${arch} (offered: ${offered})`);
}

async function readBlob(files: ImageFiles, d: Descriptor): Promise<Buffer> {
  const name = blobName(d.digest);
  const size = await files.size(name);
  if (size === undefined) throw missingBlob(files, d);
  if (d.size > MAX_JSON_BYTES) throw new GuestError('IMAGE_INVALID', `${files.describe(name)}: descriptor size ${d.size} is too large for a JSON document`);
  const data = await files.read(name, MAX_JSON_BYTES);
  const actual = sha256Hex(data);
  if (data.length !== d.size || actual !== d.digest) {
    throw new GuestError('IMAGE_DIGEST_MISMATCH', `${files.describe(name)}: content has sha256:${actual} (${data.length} bytes), but its descriptor says sha256:${d.digest} (${d.size} bytes)`);
  }
  return data;
}

function missingBlob(files: ImageFiles, d: Descriptor): GuestError {
  return new GuestError('IMAGE_INVALID', `missing blob sha256:${d.digest}: ${files.describe(blobName(d.digest))} does not exist`);
}
