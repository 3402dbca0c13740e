/**
 * Where a shim listens. containerd looks for shim sockets under /run/containerd/s whatever its own
 * state directory is; the name is a hash of what makes a shim unique — containerd's address, the
 * namespace and the group (the sandbox id for CRI containers, else the task id) — so `start` for a
 * container of a sandbox finds the sandbox's shim, and two containerds never share one.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';

export const SHIM_SOCKET_DIR = '/run/containerd/s';

export function shimSocketPath(containerdAddress: string, namespace: string, group: string): string {
  const digest = createHash('sha256').update(`virtc\0${containerdAddress}\0${namespace}\0${group}`).digest('hex');
  return join(SHIM_SOCKET_DIR, digest);
}

export function shimAddress(socketPath: string): string {
  return `unix://${socketPath}`;
}
