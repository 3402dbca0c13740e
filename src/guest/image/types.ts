// The public shapes of image preparation: where an image comes from, and what the host hands to a
// pod once it is a read-only erofs disk in the cache.

/**
 * Where an image comes from. `tag` picks one image when the layout or archive holds several
 * (OCI: the `org.opencontainers.image.ref.name` annotation; docker-archive: an entry of RepoTags).
 */
export type ImageSource =
  /** cacheKey: the caller's promise that the same key is the same tree (the tree is then not hashed). */
  | { kind: 'dir'; path: string; cacheKey?: string }
  | { kind: 'oci'; path: string; tag?: string }
  | { kind: 'docker-archive'; path: string; tag?: string }
  | { kind: 'oci-archive'; path: string; tag?: string }
  | { kind: 'default' };

/** What a container runs by default, from the image config (`config.config`), defaults filled in. */
export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  /** "KEY=value" entries; always has a PATH (the conventional default when the image sets none). */
  env: string[];
  /** Absolute; "/" when the image sets none. */
  workingDir: string;
  /** As the image wrote it ("1000", "app:app", ...); "" when unset, which means root. */
  user: string;
}

export interface PreparedImage {
  /**
   * sha256 hex naming the image content: the config digest for OCI and docker images (it pins the
   * layers through rootfs.diff_ids, so the same image from any transport shares one cache entry),
   * a content hash of the tree for `dir` and `default`.
   */
  digest: string;
  /** The erofs file in the cache: read-only, shared by every pod using the image. */
  diskPath: string;
  config: ImageConfig;
  sizeBytes: number;
}

export interface ResolveImageOptions {
  /** Cache root (default cacheDir()); images live in `<cacheDir>/images`. */
  cacheDir?: string;
  onProgress?: (msg: string) => void;
  signal?: AbortSignal;
}
