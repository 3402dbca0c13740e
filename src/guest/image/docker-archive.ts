// `docker save` / `skopeo copy … docker-archive:` tars: manifest.json lists, per image, the config
// file and the layer files, by path inside the archive. The layout varies by writer — legacy
// "<id>/layer.tar" (often a symlink to a shared file), skopeo's "<diff_id>.tar", Docker 25's
// "blobs/sha256/<hex>" — so paths are taken as given. What can be verified is: the config against
// the digest its name carries (when it carries one), each layer against the config's diff_ids
// (always), and a "blobs/sha256/<hex>" layer against its name. The image digest is the sha256 of
// the config, as Docker's image ID is.
import { posix } from 'node:path';
import { GuestError } from '../errors.js';
import { parseImageConfig } from './config.js';
import { isSha256Hex, sha256Hex } from './digest.js';
import type { ImageFiles } from './files.js';
import { asArray, asObject, asString, parseJson, shownList, shownValue } from './json.js';
import { checkLayerCount, layerLabel, MAX_JSON_BYTES, type ImagePlan } from './plan.js';

export async function planDockerArchive(files: ImageFiles, tag: string | undefined): Promise<ImagePlan> {
  const manifestFile = files.describe('manifest.json');
  if ((await files.size('manifest.json')) === undefined) {
    if ((await files.size('repositories')) !== undefined) {
      throw new GuestError('IMAGE_UNSUPPORTED', `${manifestFile}: missing; this is a pre-Docker-1.10 archive (repositories and <id>/json only), which has no content digests to verify`);
    }
    throw new GuestError('IMAGE_INVALID', `${manifestFile}: missing; not a docker-archive`);
  }
  const images = asArray(parseJson(await files.read('manifest.json', MAX_JSON_BYTES), manifestFile), 'the manifest', manifestFile)
    .map((v, i) => asObject(v, `[${i}]`, manifestFile));
  const image = selectImage(images, tag, manifestFile);
  const at = images.indexOf(image);

  const configName = asString(image.Config, `[${at}].Config`, manifestFile);
  const configFile = files.describe(configName);
  const configData = await files.read(configName, MAX_JSON_BYTES);
  const digest = sha256Hex(configData);
  const named = digestInName(configName);
  if (named !== undefined && named !== digest) {
    throw new GuestError('IMAGE_DIGEST_MISMATCH', `${configFile}: content has sha256:${digest}, but its name says sha256:${named}`);
  }
  const { config, diffIds } = parseImageConfig(configData, configFile);

  const layerNames = asArray(image.Layers, `[${at}].Layers`, manifestFile).map((v, i) => asString(v, `[${at}].Layers[${i}]`, manifestFile));
  checkLayerCount(layerNames.length, manifestFile);
  if (layerNames.length !== diffIds.length) {
    throw new GuestError('IMAGE_INVALID', `${configFile}: rootfs.diff_ids lists ${diffIds.length} layers, ${manifestFile} has ${layerNames.length}`);
  }
  for (const name of layerNames) {
    if ((await files.size(name)) === undefined) throw new GuestError('IMAGE_INVALID', `${files.describe(name)}: missing (listed in ${manifestFile})`);
  }
  const layers = layerNames.map((name, i) => {
    const blob = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(posix.normalize(name))?.[1];
    return {
      label: layerLabel(i, layerNames.length, diffIds[i]!, files, name),
      open: () => files.open(name),
      digest: blob,
      diffId: diffIds[i]!,
    };
  });
  return { digest, config, layers };
}

function selectImage(images: Array<Record<string, unknown>>, tag: string | undefined, manifestFile: string): Record<string, unknown> {
  const tagsOf = (image: Record<string, unknown>) => (Array.isArray(image.RepoTags) ? image.RepoTags.filter((t): t is string => typeof t === 'string') : []);
  const all = images.flatMap(tagsOf);
  const listed = shownList(all.map(shownValue));
  if (tag === undefined) {
    if (images.length === 1) return images[0]!;
    if (images.length === 0) throw new GuestError('IMAGE_NOT_FOUND', `${manifestFile}: the archive holds no image`);
    throw new GuestError('IMAGE_NOT_FOUND', `${manifestFile}: the archive holds ${images.length} images; choose one by tag (tags: ${listed})`);
  }
  const wanted = normalizeDockerRef(tag);
  const found = images.find((image) => tagsOf(image).some((t) => normalizeDockerRef(t) === wanted));
  if (!found) throw new GuestError('IMAGE_NOT_FOUND', `${manifestFile}: no image tagged "${tag}" (tags: ${listed})`);
  return found;
}

/**
 * Docker's reference normalization, so "busybox" matches the "docker.io/library/busybox:latest"
 * that skopeo writes in RepoTags: default tag "latest", registry docker.io, namespace library.
 */
export function normalizeDockerRef(ref: string): string {
  const lastSlash = ref.lastIndexOf('/');
  const named = ref.includes('@') || ref.slice(lastSlash + 1).includes(':') ? ref : `${ref}:latest`;
  const first = named.split('/')[0]!;
  const hasRegistry = named.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const full = hasRegistry ? named : `docker.io/${named}`;
  return /^docker\.io\/[^/]+$/.test(full.split(/[:@]/)[0]!) ? full.replace(/^docker\.io\//, 'docker.io/library/') : full;
}

/** "<hex>.json" (docker save, skopeo) or "blobs/sha256/<hex>" (Docker 25+): the digest a name carries. */
function digestInName(name: string): string | undefined {
  const normalized = posix.normalize(name);
  const base = posix.basename(normalized);
  const hex = normalized.startsWith('blobs/sha256/') ? base : base.endsWith('.json') ? base.slice(0, -5) : undefined;
  return hex !== undefined && isSha256Hex(hex) ? hex : undefined;
}
