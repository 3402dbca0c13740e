// The loopback forwarder of a pod joined to a network namespace (netns:PATH, as CRI gives every
// sandbox): whatever connects to 127.0.0.1:PORT inside that namespace reaches PORT on the guest's
// 127.0.0.1. containerd's CRI PortForward (kubectl port-forward) enters the sandbox's namespace and
// dials localhost:PORT there — where, for a VM pod, nothing listens: the containers are in the VM.
//
// One listener on 127.0.0.1 in the namespace (made by the addon: Node cannot make a socket in
// another namespace) and one iptables nat OUTPUT rule there that REDIRECTs TCP to 127.0.0.1, any
// port but the listener's own, to the listener. Each connection's original port (SO_ORIGINAL_DST)
// is where forwardPort takes it in the guest. IPv4 only: containerd dials tcp4 first and tries
// tcp6 only when that fails, which it never does while the rule is there.
//
// Crash-only and recording nothing: the rule lives in the namespace, which belongs to whoever made
// it (CRI removes it with the sandbox), and the listener dies with this process. A rule left by an
// earlier forwarder (a process that died) is replaced when the next one starts; close() removes the
// rule if the namespace still exists.
import { createServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { VcError } from '../errors.js';
import { native } from '../native.js';
import { isNetns } from '../network/index.js';
import { describe, exitText, missingProgram, run } from '../network/exec.js';
import { forwardPort } from './port-forward.js';
import type { CallOptions } from './context.js';

/** The comment that marks our rule (no spaces: `iptables -S` prints it unquoted). */
export const LOOPBACK_RULE_COMMENT = 'virtc-loopback-forward';

export interface NetnsLoopbackOptions extends CallOptions {
  /** The pod's network namespace: an nsfs file (`/var/run/netns/cni-…`, `/proc/PID/ns/net`). */
  netns: string;
  /** A connection that could not be forwarded (it was reset); for logs. */
  onConnectionError?: (err: Error, guestPort: number) => void;
}

export interface NetnsLoopbackForwarder {
  readonly netns: string;
  /** The listener's port on 127.0.0.1 in the namespace. */
  readonly port: number;
  /** Connections being forwarded now. */
  readonly connections: number;
  /** Stops listening, resets the connections, removes the rule (if the namespace is still there). */
  close(): Promise<void>;
}

/** The rule's match and target, as `iptables -A`/`-D` take them. */
function ruleSpec(port: number): string[] {
  return ['-p', 'tcp', '-d', '127.0.0.1', '!', '--dport', String(port), '-m', 'comment', '--comment', LOOPBACK_RULE_COMMENT,
    '-j', 'REDIRECT', '--to-ports', String(port)];
}

async function iptables(netns: string, args: string[]): Promise<string> {
  const argv = ['iptables', '-w', '5', '-t', 'nat', ...args];
  const result = await run(argv, { netns });
  if (result.code !== 0) throw new VcError('NETWORK_FAILED', `${describe(argv, netns)} failed (${exitText(result)}): ${result.stderr.trim()}`);
  return result.stdout;
}

/**
 * Deletes the rules of ours in the namespace's nat OUTPUT chain: those to `port`, or all of them
 * (left by an earlier forwarder). One already gone is no error.
 */
async function removeOurRules(netns: string, port?: number): Promise<void> {
  const listed = await iptables(netns, ['-S', 'OUTPUT']);
  for (const line of listed.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== '-A' || !words.includes(LOOPBACK_RULE_COMMENT)) continue;
    if (port !== undefined && words[words.indexOf('--to-ports') + 1] !== String(port)) continue;
    await iptables(netns, ['-D', ...words.slice(1)]);
  }
}

/**
 * Starts the loopback forwarder of `podId` (running, joined to `options.netns`). Rejects with
 * INVALID_CONFIG (netns not an absolute path), NETWORK_FAILED (not a namespace, no listener, the
 * rule refused) or NETWORK_UNAVAILABLE naming iptables or nsenter when one is not installed.
 */
export async function forwardNetnsLoopback(podId: string, options: NetnsLoopbackOptions): Promise<NetnsLoopbackForwarder> {
  const { netns } = options;
  if (typeof netns !== 'string' || !netns.startsWith('/')) {
    throw new VcError('INVALID_CONFIG', `netns: expected the absolute path of a network namespace file, got ${JSON.stringify(netns)}`);
  }
  for (const [program, pkg] of [['nsenter', 'util-linux'], ['iptables', 'iptables']] as const) {
    if (missingProgram(program, process.env.PATH)) {
      throw new VcError('NETWORK_UNAVAILABLE', `${program} not found in PATH (install ${pkg}); it is needed to redirect 127.0.0.1 in ${netns} to the pod`);
    }
  }
  if (!(await isNetns(netns))) throw new VcError('NETWORK_FAILED', `netns: ${netns} is not a network namespace (nsfs file)`);
  let listener: { fd: number; port: number };
  try {
    listener = native().listenInNetns(netns);
  } catch (err) {
    throw new VcError('NETWORK_FAILED', `cannot listen on 127.0.0.1 in ${netns}: ${(err as Error).message}`, { cause: err });
  }
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd: listener.fd }, () => { server.off('error', reject); resolve(); });
  });
  const { port } = listener;
  try {
    await removeOurRules(netns);
    await iptables(netns, ['-A', 'OUTPUT', ...ruleSpec(port)]);
  } catch (err) {
    server.close();
    throw err;
  }

  const sockets = new Set<Socket>();
  let closed = false;
  server.on('connection', (socket: Socket) => {
    if (closed) return void socket.resetAndDestroy();
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    void forwardConnection(podId, socket, port, options);
  });
  const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));

  return {
    netns,
    port,
    get connections() {
      return sockets.size;
    },
    close: async () => {
      if (closed) return serverClosed;
      closed = true;
      server.close();
      for (const socket of sockets) socket.resetAndDestroy();
      // A namespace already gone took the rule with it.
      if (await isNetns(netns)) await removeOurRules(netns, port).catch(async (err: VcError) => {
        if (await isNetns(netns)) throw err;
      });
      await serverClosed;
    },
  };
}

/** The guest port a connection the rule redirected was meant for. */
function guestPortOf(socket: Socket, listenerPort: number): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new VcError('FORWARD_FAILED', 'the accepted connection has no file descriptor');
  try {
    const original = native().originalDestination(fd);
    return original.port;
  } catch (err) {
    // Not NATed: a client dialled the listener's own port, which the rule leaves alone.
    if ((err as { errno?: number }).errno === 2) return listenerPort;
    throw new VcError('FORWARD_FAILED', `the original destination of a connection: ${(err as Error).message}`, { cause: err });
  }
}

/** Pipes one accepted connection to its port in the guest; a port nobody listens on resets it. */
async function forwardConnection(podId: string, socket: Socket, listenerPort: number, options: NetnsLoopbackOptions): Promise<void> {
  let guestPort = 0;
  let stream: Duplex | null = null;
  socket.on('error', () => stream?.destroy());
  socket.on('close', () => {
    // Not after a clean finish of both directions: the agent has ended the forward already.
    if (stream && !(stream.readableEnded && stream.writableFinished)) stream.destroy();
  });
  try {
    guestPort = guestPortOf(socket, listenerPort);
    stream = await forwardPort(podId, guestPort, { root: options.root, hypervisor: options.hypervisor });
  } catch (err) {
    options.onConnectionError?.(err as Error, guestPort);
    socket.resetAndDestroy();
    return;
  }
  if (socket.destroyed) return void stream.destroy();
  stream.on('error', (err: Error) => {
    options.onConnectionError?.(err, guestPort);
    socket.resetAndDestroy();
  });
  socket.pipe(stream);
  stream.pipe(socket);
  socket.resume();
}
