/**
 * Sharing out agent ports that serve one client each (QEMU's virtio-serial socket chardevs): a
 * client takes the first port whose lease file it can `flock` exclusively without waiting, keeps
 * the lock while its connection is open, and lets go when the connection closes. The kernel drops
 * the lock of a process that dies, so a crashed client never keeps a port: nothing to clean up.
 * When every port is taken the client polls until one frees up or its deadline passes.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { native } from '../native.js';
import { deadline } from './deadline.js';
import { dialUnix, DEFAULT_DIAL_TIMEOUT_MS, type DialOptions } from './dial.js';
import { AgentError } from './errors.js';

/** One port: its Unix socket and the lease file that says who uses it. */
export interface LeasablePort {
  socket: string;
  lease: string;
}

export interface PortLease {
  /** Index of the port in the list given to leasePort. */
  readonly index: number;
  readonly port: LeasablePort;
  /** Lets the port go (closing the lease file drops the lock). Idempotent. */
  release(): Promise<void>;
}

/** Polling backs off from 2 ms to this: ports free up when a client closes, at no known time. */
export const LEASE_POLL_MAX_MS = 50;

/**
 * Takes the first free port, waiting while all are taken. Rejects with AGENT_BUSY naming the
 * number of ports when `timeoutMs` (default 10 s) passes first, AGENT_ABORTED when `signal` fires,
 * AGENT_INVALID_ARGUMENT for an empty list, AGENT_CONNECT_FAILED when a lease file cannot be opened.
 */
export async function leasePort(ports: readonly LeasablePort[], options: DialOptions = {}): Promise<PortLease> {
  if (ports.length === 0) throw new AgentError('AGENT_INVALID_ARGUMENT', 'ports: the list of agent ports is empty');
  const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const limit = deadline('waiting for a free agent port', { signal: options.signal, timeoutMs });
  try {
    for (let delay = 2; ; delay = Math.min(delay * 2, LEASE_POLL_MAX_MS)) {
      if (limit.signal.aborted) throw busyOr(limit.signal.reason, ports, timeoutMs);
      const lease = await tryLeaseAny(ports);
      if (lease) {
        if (!limit.signal.aborted) return lease;
        await lease.release();
        throw busyOr(limit.signal.reason, ports, timeoutMs);
      }
      await pause(delay, limit.signal);
    }
  } finally {
    limit.dispose();
  }
}

/**
 * Leases a port and connects to its socket; the lease is released once the socket has closed
 * (whoever closes it). Rejects as leasePort does, or as dialUnix when the socket cannot be
 * reached (the lease is released then). `timeoutMs` bounds the wait and the connect together.
 */
export async function dialLeasedPort(ports: readonly LeasablePort[], options: DialOptions = {}): Promise<Socket> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const started = Date.now();
  const lease = await leasePort(ports, options);
  let socket: Socket;
  try {
    const left = timeoutMs > 0 && Number.isFinite(timeoutMs) ? Math.max(1, timeoutMs - (Date.now() - started)) : 0;
    socket = await dialUnix(lease.port.socket, { signal: options.signal, timeoutMs: left });
  } catch (err) {
    await lease.release();
    throw err;
  }
  socket.once('close', () => void lease.release());
  return socket;
}

/** One pass over the ports in order; null when every lease is held by someone else. */
async function tryLeaseAny(ports: readonly LeasablePort[]): Promise<PortLease | null> {
  for (const [index, port] of ports.entries()) {
    let handle: FileHandle;
    try {
      // Opened per attempt: flock locks belong to the open file, so two opens in one process
      // exclude each other just as two processes do.
      handle = await open(port.lease, 'a', 0o600);
    } catch (err) {
      throw new AgentError('AGENT_CONNECT_FAILED', `agent port lease ${port.lease} cannot be opened: ${(err as Error).message}`, { cause: err });
    }
    let taken = false;
    try {
      taken = native().flock(handle.fd, true);
    } finally {
      if (!taken) await handle.close();
    }
    if (taken) return heldLease(index, port, handle);
  }
  return null;
}

function heldLease(index: number, port: LeasablePort, handle: FileHandle): PortLease {
  let released: Promise<void> | null = null;
  return {
    index,
    port,
    release() {
      released ??= handle.close().catch(() => {});
      return released;
    },
  };
}

/** The timeout becomes "all N ports busy"; a caller's abort stays what it was. */
function busyOr(reason: unknown, ports: readonly LeasablePort[], timeoutMs: number): AgentError {
  if (reason instanceof AgentError && reason.code === 'AGENT_TIMEOUT') {
    const first = ports[0]!.lease;
    const names = ports.length === 1 ? first : `${first} … ${ports[ports.length - 1]!.lease}`;
    return new AgentError(
      'AGENT_BUSY',
      `all ${ports.length} agent port${ports.length === 1 ? ' was' : 's were'} busy for ${timeoutMs} ms (leases ${names} held by other clients)`,
      { cause: reason },
    );
  }
  return reason instanceof AgentError ? reason : new AgentError('AGENT_ABORTED', 'waiting for a free agent port was aborted', { cause: reason });
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
