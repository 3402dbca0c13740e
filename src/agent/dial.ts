/**
 * Opening the byte stream to the agent: a plain Unix socket (QEMU's virtio-serial chardev), or a
 * Firecracker-style hybrid vsock Unix socket (`CONNECT <port>\n` → `OK <hostport>\n`).
 */
import { createConnection, type Socket } from 'node:net';
import { AgentError, describeValue, protocolError } from './errors.js';
import { deadline, type CancelOptions, type Deadline } from './deadline.js';

export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
/** A sane `OK <u32>` line is 14 bytes; anything much longer is not a hybrid vsock reply. */
const MAX_REPLY_LINE = 128;

export type DialOptions = CancelOptions;

/** Connects to a Unix socket. Rejects with AGENT_CONNECT_FAILED, AGENT_TIMEOUT or AGENT_ABORTED. */
export async function dialUnix(path: string, options: DialOptions = {}): Promise<Socket> {
  const limit = deadline(`connecting to ${path}`, { signal: options.signal, timeoutMs: options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS });
  try {
    return await connectUnix(path, limit);
  } finally {
    limit.dispose();
  }
}

/**
 * Connects to the host side of a hybrid vsock and asks for guest `port`. Whatever the peer sent
 * after the `OK` line is pushed back into the socket, so the first agent bytes are not lost.
 * Rejects with AGENT_CONNECT_FAILED (refused, closed, or a reply other than `OK <n>`),
 * AGENT_PROTOCOL (no newline within 128 bytes), AGENT_TIMEOUT or AGENT_ABORTED.
 */
export async function dialHybridVsock(path: string, port: number, options: DialOptions = {}): Promise<Socket> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff_ffff) {
    throw new AgentError('AGENT_INVALID_ARGUMENT', `vsock port ${describeValue(port)} must be a u32`);
  }
  const what = `hybrid vsock CONNECT ${port} via ${path}`;
  const limit = deadline(what, { signal: options.signal, timeoutMs: options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS });
  try {
    const socket = await connectUnix(path, limit);
    try {
      socket.write(`CONNECT ${port}\n`);
      await readOkLine(socket, what, limit.signal);
    } catch (err) {
      socket.destroy();
      throw err;
    }
    return socket;
  } finally {
    limit.dispose();
  }
}

/**
 * A Unix socket whose listen backlog is full answers a non-blocking connect with EAGAIN: its
 * server (QEMU's chardev takes one client at a time) has not yet seen the last client go. That
 * passes; it is retried until the deadline.
 */
async function connectUnix(path: string, limit: Deadline): Promise<Socket> {
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    try {
      return await connectOnce(path, limit);
    } catch (err) {
      if ((err as { cause?: NodeJS.ErrnoException }).cause?.code !== 'EAGAIN' || limit.signal.aborted) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

function connectOnce(path: string, limit: Deadline): Promise<Socket> {
  const { signal } = limit;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const cleanup = (): void => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(new AgentError('AGENT_CONNECT_FAILED', `connecting to ${path} failed: ${err.message}`, { cause: err }));
    };
    const onAbort = (): void => {
      cleanup();
      socket.destroy();
      reject(signal.reason);
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reads one line with 'readable'/read() so the socket is left unconsumed (not paused) afterwards. */
function readOkLine(socket: Socket, what: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: AgentError): void => {
      cleanup();
      reject(err);
    };
    const onReadable = (): void => {
      for (let chunk: Buffer | null; (chunk = socket.read() as Buffer | null) !== null; ) {
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        const newline = received.indexOf(0x0a);
        if (newline < 0) {
          if (received.length > MAX_REPLY_LINE) fail(protocolError(`${what}: no newline in the first ${received.length} bytes of the reply`));
          continue;
        }
        cleanup();
        const line = received.subarray(0, newline).toString('latin1');
        const rest = received.subarray(newline + 1);
        if (!/^OK [0-9]+$/.test(line)) {
          reject(new AgentError('AGENT_CONNECT_FAILED', `${what} refused: reply ${describeValue(line)}, expected "OK <port>"`));
          return;
        }
        if (rest.length > 0) socket.unshift(rest); // agent bytes that came with the OK line
        resolve();
        return;
      }
    };
    const onEnd = (): void => {
      fail(new AgentError('AGENT_CONNECT_FAILED', `${what}: the socket closed before replying (received ${describeValue(received.toString('latin1'))})`));
    };
    const onError = (err: Error): void => {
      fail(new AgentError('AGENT_CONNECT_FAILED', `${what} failed: ${err.message}`, { cause: err }));
    };
    const onAbort = (): void => fail(signal.reason as AgentError);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
