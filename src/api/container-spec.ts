// What a container runs: the image's defaults overridden by the container config, Docker-style.
import { VcError } from '../errors.js';
import { hostnameFromId } from '../model/hostname.js';
import type { ContainerSpec } from '../model/records.js';
import type { ContainerConfig } from '../model/container-config.js';

export interface ImageDefaults {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
}

export function containerSpec(podId: string, config: ContainerConfig, image: ImageDefaults): ContainerSpec {
  // An entrypoint given without a command drops the image's Cmd, as `docker run --entrypoint` does.
  const entrypoint = config.entrypoint ?? image.entrypoint;
  const cmd = config.command ?? (config.entrypoint ? [] : image.cmd);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    throw new VcError('INVALID_CONFIG', `container ${config.id} in pod ${podId}: command: the image has no Entrypoint or Cmd, so a command is required`);
  }
  const env = new Map<string, string>();
  for (const pair of image.env) {
    const eq = pair.indexOf('=');
    if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  for (const [key, value] of Object.entries(config.env ?? {})) env.set(key, value);
  return {
    argv,
    env: [...env].map(([k, v]) => `${k}=${v}`),
    cwd: config.workdir ?? (image.workingDir || '/'),
    user: config.user ?? (image.user || '0:0'),
    hostname: config.hostname ?? hostnameFromId(config.id),
  };
}

/** cgroup limits as the agent takes them. */
export function agentLimits(limits: ContainerConfig['limits']): Record<string, number> {
  const out: Record<string, number> = {};
  if (limits?.memoryMiB !== undefined) out.memoryBytes = limits.memoryMiB * 1024 * 1024;
  if (limits?.pids !== undefined) out.pids = limits.pids;
  if (limits?.cpus !== undefined) {
    out.cpuPeriodUs = 100_000;
    out.cpuQuotaUs = Math.max(1000, Math.round(limits.cpus * 100_000));
  }
  return out;
}

/** The disk serial the guest finds an image by: 20 characters, virtio-blk's limit. */
export function imageSerial(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 20);
}
