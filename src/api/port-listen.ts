// listenForward: a host TCP listener whose every connection is forwarded to a guest port over the
// agent channel (forwardPort), as `virtc pod port-forward` and `virtc run -p` need it.
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { AgentForward } from '../agent/index.js';
import { abortError, VcError } from '../errors.js';
import { acquireAgentLink, checkAddress, checkPort, forwardOnPod, type AgentLinkLease } from './port-forward.js';
import { runningPod, type RunningPod } from './pod-session.js';
import { storeFor, type CallOptions } from './context.js';

export interface ListenForwardOptions extends CallOptions {
  /** Host address to listen on; default 127.0.0.1. */
  hostAddr?: string;
  /** Host port; 0 (the default) lets the kernel pick one (see PortListener.port). */
  hostPort?: number;
  /** Port in the guest. */
  guestPort: number;
  /** Address in the guest; default 127.0.0.1. */
  guestHost?: string;
  /** A connection that could not be forwarded or failed on the way (it was reset); for logs. */
  onConnectionError?: (err: Error, from: string) => void;
}

export interface PortListener {
  /** The address and port listened on (the port the kernel picked for hostPort 0). */
  readonly address: string;
  readonly port: number;
  readonly guestHost: string;
  readonly guestPort: number;
  /** TCP connections being forwarded now. */
  readonly connections: number;
  /**
   * Settles when the listener has stopped: with null after close(), with the error when the pod
   * stopped (POD_NOT_RUNNING, POD_NOT_FOUND), its agent could not be reached again, or the
   * call's AbortSignal fired (ABORTED).
   */
  readonly done: Promise<VcError | null>;
  /** Stops listening and closes every forwarded connection. */
  close(): Promise<void>;
}

/** "127.0.0.1:8080", "[::1]:8080". */
export function hostPortName(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * Listens on `hostAddr:hostPort` and forwards each accepted connection to `guestHost:guestPort` in
 * the pod, many at once, over the pod's shared agent connection (held while listening, so that a
 * stopped pod is noticed at once: `done` then settles with the error and the listener closes).
 * A listen that fails (address in use, …) rejects with FORWARD_FAILED.
 */
export async function listenForward(podId: string, options: ListenForwardOptions): Promise<PortListener> {
  const guestPort = checkPort('guestPort', options?.guestPort);
  const hostPort = options.hostPort === undefined ? 0 : checkPort('hostPort', options.hostPort, 0);
  const hostAddr = checkAddress('hostAddr', options.hostAddr, '127.0.0.1');
  const guestHost = checkAddress('guestHost', options.guestHost, '127.0.0.1');
  const store = storeFor(options);
  let pod: RunningPod = await runningPod(store, podId, options);
  let lease = await acquireAgentLink(pod, options.signal);
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: hostAddr, port: hostPort, backlog: 511 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    lease.release();
    const e = err as NodeJS.ErrnoException;
    throw new VcError('FORWARD_FAILED', `cannot listen on ${hostPortName(hostAddr, hostPort)}: ${e.code ?? e.message}`, { cause: err });
  }
  const port = (server.address() as { port: number }).port;

  const sockets = new Set<Socket>();
  let stopped = false;
  let resolveDone!: (value: VcError | null) => void;
  const done = new Promise<VcError | null>((resolve) => (resolveDone = resolve));
  const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  const stop = (reason: VcError | null): void => {
    if (stopped) return;
    stopped = true;
    options.signal?.removeEventListener('abort', onAbort);
    server.close();
    for (const socket of sockets) socket.destroy();
    lease.release();
    resolveDone(reason);
  };
  const onAbort = (): void => stop(abortError(options.signal, 'listenForward'));
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  // The held connection closes when the VM goes (stop, crash) or the agent drops it: then either
  // the pod is not running any more, or a new connection is taken for the next forwards.
  const watch = (current: AgentLinkLease): void => {
    current.client.closed.then(async () => {
      if (stopped || current !== lease) return;
      try {
        const now = await runningPod(store, podId, options);
        const next = await acquireAgentLink(now, options.signal);
        if (stopped) return next.release();
        current.release();
        lease = next;
        pod = now;
        watch(next);
      } catch (err) {
        stop(err instanceof VcError ? err : new VcError('AGENT_UNREACHABLE', `pod ${podId}: ${String(err)}`, { cause: err }));
      }
    });
  };
  watch(lease);

  server.on('connection', (socket: Socket) => {
    if (stopped) return socket.destroy();
    sockets.add(socket);
    const from = hostPortName(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    let forward: AgentForward | null = null;
    const fail = (err: Error): void => {
      if (!stopped) options.onConnectionError?.(err, from);
      socket.resetAndDestroy();
    };
    socket.on('error', () => forward?.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      // Not after a clean finish of both directions: the agent has ended the forward already.
      if (forward && !(forward.readableEnded && forward.writableFinished)) forward.destroy();
    });
    forwardOnPod(pod, guestPort, guestHost).then(
      (stream) => {
        if (socket.destroyed) return void stream.destroy();
        forward = stream;
        stream.on('error', fail);
        socket.pipe(stream);
        stream.pipe(socket);
        socket.resume();
      },
      fail,
    );
  });

  return {
    address: hostAddr,
    port,
    guestHost,
    guestPort,
    get connections() {
      return sockets.size;
    },
    done,
    close: async () => {
      stop(null);
      await serverClosed;
    },
  };
}
