/**
 * A ttrpc client on a Unix socket, for the calls a shim makes: Events/Forward to containerd's
 * TTRPC_ADDRESS (and, in tests, Task calls to our own server). Unary calls only, any number at once;
 * each gets the next odd stream id and is answered by the Response on that stream.
 */
import { createConnection, type Socket } from 'node:net';
import { common, ProtoDecodeError, type KeyValue } from '../proto/messages.js';
import { FrameChannel } from './channel.js';
import { protocolError, RpcError, StatusCode, TtrpcError } from './errors.js';
import { FrameType, type Frame } from './frame.js';

export interface CallOptions {
  /** Sent as the Request's timeout_nano, and the call fails with TTRPC_TIMEOUT when it passes. */
  timeoutMs?: number;
  metadata?: Record<string, string | readonly string[]>;
  signal?: AbortSignal;
}

interface PendingCall {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
}

/**
 * The socket path of a ttrpc address: containerd passes plain paths in TTRPC_ADDRESS and
 * "unix://" URLs for shim addresses; "@name" is a Linux abstract socket.
 */
export function unixSocketPath(address: string): string {
  const path = address.startsWith('unix://') ? address.slice('unix://'.length) : address;
  if (path.startsWith('@')) return `\0${path.slice(1)}`;
  if (!path.startsWith('/')) {
    throw new TtrpcError('TTRPC_INVALID_ARGUMENT', `ttrpc address ${JSON.stringify(address)} is not a Unix socket path or unix:// URL`);
  }
  return path;
}

export class TtrpcClient {
  readonly #channel: FrameChannel;
  readonly #pending = new Map<number, PendingCall>();
  /** The next stream id: odd, as the client opens streams. */
  #nextId = 1;

  private constructor(socket: Socket) {
    this.#channel = new FrameChannel(socket, (frame) => this.#onFrame(frame), (reason) => {
      const err = new TtrpcError('TTRPC_CLOSED', `ttrpc connection closed${reason ? `: ${reason.message}` : ''}`, reason ? { cause: reason } : undefined);
      for (const call of this.#pending.values()) call.reject(err);
      this.#pending.clear();
    });
  }

  /** Connects to `address` (see unixSocketPath); fails with TTRPC_CONNECT_FAILED naming it. */
  static connect(address: string, options: { signal?: AbortSignal } = {}): Promise<TtrpcClient> {
    const path = unixSocketPath(address);
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const onAbort = (): void => {
        socket.destroy();
        reject(new TtrpcError('TTRPC_ABORTED', `connecting to ttrpc ${address} was aborted`, { cause: options.signal?.reason }));
      };
      socket.once('connect', () => {
        options.signal?.removeEventListener('abort', onAbort);
        socket.removeAllListeners('error');
        resolve(new TtrpcClient(socket));
      });
      socket.once('error', (err) => {
        options.signal?.removeEventListener('abort', onAbort);
        reject(new TtrpcError('TTRPC_CONNECT_FAILED', `cannot connect to ttrpc ${address}: ${err.message}`, { cause: err }));
      });
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  get closed(): boolean {
    return this.#channel.closed;
  }

  /**
   * Calls service/method with an encoded request; resolves to the encoded answer. A non-OK status
   * rejects with RpcError; a broken or closed connection with TtrpcError.
   */
  call(service: string, method: string, payload: Uint8Array, options: CallOptions = {}): Promise<Buffer> {
    if (this.#channel.closed) {
      const reason = this.#channel.closeReason;
      return Promise.reject(new TtrpcError('TTRPC_CLOSED', `ttrpc connection is closed${reason ? `: ${reason.message}` : ''}`, reason ? { cause: reason } : undefined));
    }
    if (options.signal?.aborted) {
      return Promise.reject(new TtrpcError('TTRPC_ABORTED', `${service}/${method} was aborted`, { cause: options.signal.reason }));
    }
    if (this.#nextId > 0xffffffff) {
      return Promise.reject(new TtrpcError('TTRPC_CLOSED', 'ttrpc stream ids of this connection are used up: connect again'));
    }
    const id = this.#nextId;
    this.#nextId += 2;
    const { timeoutMs, signal } = options;
    const request = common.Request.encode({
      service,
      method,
      payload,
      timeoutNano: timeoutMs ? Math.round(timeoutMs * 1e6) : 0,
      metadata: metadataEntries(options.metadata),
    });
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => done(new TtrpcError('TTRPC_ABORTED', `${service}/${method} was aborted`, { cause: signal?.reason }));
      // Settles once; a late answer for an abandoned stream finds nothing pending and is dropped.
      const done = (err: Error | null, answer?: Buffer): void => {
        if (this.#pending.get(id) !== pending) return;
        this.#pending.delete(id);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(answer!);
      };
      const pending: PendingCall = { resolve: (answer) => done(null, answer), reject: (err) => done(err) };
      this.#pending.set(id, pending);
      if (timeoutMs) {
        timer = setTimeout(() => done(new TtrpcError('TTRPC_TIMEOUT', `${service}/${method}: no answer within ${timeoutMs} ms`)), timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        this.#channel.send(id, FrameType.Request, request);
      } catch (err) {
        done(err as Error);
      }
    });
  }

  /** Closes the connection; calls still waiting fail with TTRPC_CLOSED. */
  close(): void {
    this.#channel.close();
  }

  #onFrame(frame: Frame): void {
    if (frame.type === FrameType.Request) {
      throw protocolError(`ttrpc server sent a request frame (stream ${frame.streamId}); server-initiated streams are not supported`);
    }
    if (frame.type === FrameType.Data) {
      throw protocolError(`ttrpc server sent a data frame on stream ${frame.streamId}, a unary call`);
    }
    const pending = this.#pending.get(frame.streamId);
    if (!pending) {
      // An answer to a call given up (timed out, aborted) arrives late: expected. One to a stream
      // never opened is not.
      if (frame.streamId % 2 === 1 && frame.streamId < this.#nextId) return;
      throw protocolError(`ttrpc server answered stream ${frame.streamId}, which was never opened`);
    }
    let response;
    try {
      response = common.Response.decode(frame.data);
    } catch (err) {
      if (err instanceof ProtoDecodeError) throw protocolError(`ttrpc server sent a bad response on stream ${frame.streamId}: ${err.message}`, err);
      throw err;
    }
    const status = response.status;
    if (status && status.code !== StatusCode.OK) pending.reject(new RpcError(status.code, status.message));
    else pending.resolve(response.payload);
  }
}

function metadataEntries(metadata: CallOptions['metadata']): KeyValue[] {
  const entries: KeyValue[] = [];
  for (const [key, values] of Object.entries(metadata ?? {})) {
    for (const value of typeof values === 'string' ? [values] : values) entries.push({ key, value });
  }
  return entries;
}
