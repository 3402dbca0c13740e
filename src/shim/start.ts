/**
 * `<shim> -namespace NS -address A -publish-binary B -id ID start`, run by containerd in the
 * bundle: prints the address of the shim that serves the task's pod — a running one (the sandbox's,
 * for a CRI container) or a new one, started detached from containerd in its own session.
 */
import { createConnection } from 'node:net';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { shimAddress, shimSocketPath } from './address.js';
import { readBundleSpec } from '../oci/spec.js';
import { groupOf, taskRole } from './pod-group.js';
import { requireFlags, type ShimArgs } from './args.js';
import { startDetachedServer } from '../host/detached.js';

const READY_TIMEOUT_MS = 20_000;

/**
 * V8 settings for the long-lived shim, one per pod, where memory counts more than peak speed: a
 * 1 MiB young generation (the default 16 MiB is mostly empty and dirty), no optimizing compiler,
 * GC on the main thread, no worker pool, and gc() exposed so the shim compacts after a burst of
 * work (an image build) instead of keeping the high-water mark. Measured in bench/containerd.ts.
 */
export const SERVE_NODE_FLAGS = ['--max-semi-space-size=1', '--lite-mode', '--single-threaded-gc', '--v8-pool-size=0', '--expose-gc'];

export async function start(args: ShimArgs, entry: string): Promise<string> {
  requireFlags(args, 'namespace', 'id', 'address');
  const spec = await readBundleSpec(process.cwd());
  const group = groupOf(taskRole(spec.annotations, args.id), args.id);
  const socket = shimSocketPath(args.address, args.namespace, group);
  if (await answers(socket)) return shimAddress(socket);
  mkdirSync(dirname(socket), { recursive: true, mode: 0o711 });
  await startDetachedServer({
    args: [
      ...SERVE_NODE_FLAGS, entry, '-namespace', args.namespace, '-address', args.address, '-publish-binary', args.publishBinary,
      '-id', args.id, '-socket', socket, ...(args.debug ? ['-debug'] : []), 'serve', group,
    ],
    cwd: process.cwd(), env: { ...process.env, VC_SHIM_GROUP: group },
    name: 'the shim', listensOn: socket, logHint: "see containerd's log", timeoutMs: READY_TIMEOUT_MS,
  });
  return shimAddress(socket);
}

/** Whether a server accepts connections on the socket now. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}
