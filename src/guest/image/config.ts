// The image config JSON (OCI image-spec config.md; Docker's is the same shape): what a container
// runs by default, and rootfs.diff_ids, the sha256 of every uncompressed layer, which pins the
// file tree and lets us verify layers whatever their compression or transport.
import { GuestError } from '../errors.js';
import type { ImageConfig } from './types.js';
import { parseDigest } from './digest.js';
import { asArray, asObject, optionalString, optionalStringArray, parseJson, shownValue } from './json.js';

/** What Docker and containerd put in a container's environment when the image sets no PATH. */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ParsedConfig {
  config: ImageConfig;
  /** sha256 hex of each uncompressed layer, bottom first. */
  diffIds: string[];
}

export function parseImageConfig(data: Uint8Array, file: string): ParsedConfig {
  const root = asObject(parseJson(data, file), 'the config', file);
  if (root.os !== undefined && root.os !== 'linux') {
    throw new GuestError('IMAGE_UNSUPPORTED', `${file}: os is ${shownValue(root.os)}; only linux images can run in the guest`);
  }
  const rootfs = asObject(root.rootfs, 'rootfs', file);
  if (rootfs.type !== 'layers') throw new GuestError('IMAGE_INVALID', `${file}: rootfs.type must be "layers"`);
  const diffIds = asArray(rootfs.diff_ids, 'rootfs.diff_ids', file).map((d, i) => parseDigest(d, `rootfs.diff_ids[${i}]`, file));
  const c = root.config === undefined || root.config === null ? {} : asObject(root.config, 'config', file);
  return { config: withDefaults({
    entrypoint: optionalStringArray(c.Entrypoint, 'config.Entrypoint', file),
    cmd: optionalStringArray(c.Cmd, 'config.Cmd', file),
    env: optionalStringArray(c.Env, 'config.Env', file),
    workingDir: optionalString(c.WorkingDir, 'config.WorkingDir', file),
    user: optionalString(c.User, 'config.User', file),
  }), diffIds };
}

export function withDefaults(c: Partial<ImageConfig>): ImageConfig {
  const env = [...(c.env ?? [])];
  if (!env.some((e) => e.startsWith('PATH='))) env.push(DEFAULT_PATH);
  return {
    entrypoint: c.entrypoint ?? [],
    cmd: c.cmd ?? [],
    env,
    // An empty or relative WorkingDir means "/" to Docker; keep it absolute for the agent.
    workingDir: (c.workingDir ?? '').startsWith('/') ? c.workingDir! : `/${c.workingDir ?? ''}`,
    user: c.user ?? '',
  };
}
