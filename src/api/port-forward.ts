// forwardPort: a TCP connection to a port in the pod's guest, carried over the agent channel (no
// pod network needed). Every forward of one pod in this process shares one agent connection,
// since a QEMU pod has only a few agent ports (docs/agent-protocol.md, "Transport"): 50 forwards
// at once must not take 50 of them.
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AgentClient, AgentForward } from '../agent/index.js';
import { describeValue } from '../agent/errors.js';
import { abortError, VcError } from '../errors.js';
import { openAgent, runningPod, type RunningPod } from './pod-session.js';
import { storeFor, type CallOptions } from './context.js';

export interface ForwardPortOptions extends CallOptions {
  /** Address in the guest to connect to: an IPv4 or IPv6 literal; default 127.0.0.1. */
  host?: string;
}

/** A port checked for the API: an integer 1..65535 (INVALID_CONFIG naming `field` otherwise). */
export function checkPort(field: string, value: unknown, min = 1): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > 65535) {
    throw new VcError('INVALID_CONFIG', `${field}: expected an integer ${min}..65535, got ${describeValue(value)}`);
  }
  return value as number;
}

/** An IP address literal, or the default when absent (INVALID_CONFIG naming `field` otherwise). */
export function checkAddress(field: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || isIP(value) === 0) {
    throw new VcError('INVALID_CONFIG', `${field}: expected an IPv4 or IPv6 address, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Opens a TCP connection to `guestPort` on the guest's 127.0.0.1 (the loopback every container of
 * the pod shares) or `options.host`, and returns it as a Duplex: what is written reaches the guest
 * peer, end() half-closes, what the peer sends is read, destroy() closes the guest socket. A guest
 * port nobody listens on rejects with FORWARD_FAILED (an AgentError); a reset in the guest later
 * destroys the stream with FORWARD_FAILED.
 */
export async function forwardPort(podId: string, guestPort: number, options: ForwardPortOptions = {}): Promise<Duplex> {
  checkPort('guestPort', guestPort);
  const host = checkAddress('host', options.host, '127.0.0.1');
  if (options.signal?.aborted) throw abortError(options.signal, 'forwardPort');
  const pod = await runningPod(storeFor(options), podId, options);
  return forwardOnPod(pod, guestPort, host, options.signal);
}

/** A forward on a pod known to be running, over the pod's shared agent connection. */
export async function forwardOnPod(pod: RunningPod, guestPort: number, host: string, signal?: AbortSignal): Promise<AgentForward> {
  const link = await acquireAgentLink(pod, signal);
  try {
    const stream = await link.client.forward(guestPort, { host }, { signal });
    // Settles when the agent has finished the forward (or the connection is gone): the shared
    // connection is not needed for it any more.
    stream.ended.then(link.release, link.release);
    return stream;
  } catch (err) {
    link.release();
    throw err;
  }
}

// --- the shared agent connection of each pod ---------------------------------------------------

interface SharedLink {
  key: string;
  connecting: Promise<AgentClient>;
  client: AgentClient | null;
  refs: number;
}

/** One use of a pod's shared agent connection; release() once, when done with it. */
export interface AgentLinkLease {
  client: AgentClient;
  release(): void;
}

const links = new Map<string, SharedLink>();

/** The pod's VM as of now: a restarted pod (new VMM) gets a new connection. */
function linkKey(pod: RunningPod): string {
  const { record, paths } = pod;
  return JSON.stringify([paths.dir, record.id, record.vmm.pid, record.vmm.startedAt]);
}

/**
 * Takes a reference on the pod's shared agent connection, opening it if there is none or the one
 * there is has closed. The connection closes when the last reference is released.
 */
export async function acquireAgentLink(pod: RunningPod, signal?: AbortSignal): Promise<AgentLinkLease> {
  const key = linkKey(pod);
  let link = links.get(key);
  if (link?.client?.closeReason) {
    links.delete(key);
    link = undefined;
  }
  if (!link) {
    // Opened without the caller's signal: other callers may share it. Each caller races its own.
    const fresh: SharedLink = { key, connecting: openAgent(pod), client: null, refs: 0 };
    links.set(key, fresh);
    fresh.connecting.then(
      (client) => {
        fresh.client = client;
        client.closed.then(() => forget(fresh));
        if (fresh.refs === 0) {
          forget(fresh);
          client.close();
        }
      },
      () => forget(fresh),
    );
    link = fresh;
  }
  const held = link;
  held.refs += 1;
  let client: AgentClient;
  try {
    client = await abortable(held.connecting, signal);
  } catch (err) {
    unref(held);
    throw err;
  }
  let released = false;
  return {
    client,
    release: () => {
      if (released) return;
      released = true;
      unref(held);
    },
  };
}

function unref(link: SharedLink): void {
  link.refs -= 1;
  if (link.refs > 0 || !link.client) return; // still connecting: closed once it connects
  forget(link);
  link.client.close();
}

function forget(link: SharedLink): void {
  if (links.get(link.key) === link) links.delete(link.key);
}

/** Shared agent connections open (or opening) in this process, with their reference counts; for tests. */
export function sharedAgentLinks(): { key: string; refs: number; open: boolean }[] {
  return [...links.values()].map((l) => ({ key: l.key, refs: l.refs, open: l.client !== null && !l.client.closeReason }));
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(signal, 'forwardPort'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal, 'forwardPort'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
