/**
 * A ttrpc server on a Unix socket: every connection may carry many unary calls at once (odd stream
 * ids), each a Request {service, method, payload, timeout_nano, metadata} routed to the handler
 * registered for "service/method" and answered with a Response {status, payload} on its stream.
 * A handler answers an error status by throwing an RpcError; any other exception is answered as
 * Internal (and reported through onError), so a bug in one call never takes the connection down.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { common, ProtoDecodeError, type MessageInit, type TtrpcRequest, type TtrpcResponse } from '../proto/messages.js';
import { FrameChannel } from './channel.js';
import { protocolError, RpcError, StatusCode, TtrpcError } from './errors.js';
import { FrameFlag, FrameType, MAX_DATA_LENGTH, type Frame } from './frame.js';

export interface CallContext {
  readonly service: string;
  readonly method: string;
  /** The Request's metadata; a key may carry several values (e.g. "containerd-namespace-ttrpc"). */
  readonly metadata: Readonly<Record<string, string[]>>;
  /** The caller's timeout (0: none), as sent. */
  readonly timeoutNano: number;
  /** Aborts when the caller's timeout passes or the connection closes. */
  readonly signal: AbortSignal;
}

/** Takes the method's encoded request, returns its encoded answer. */
export type Handler = (payload: Buffer, call: CallContext) => Promise<Uint8Array> | Uint8Array;

export interface TtrpcServerOptions {
  /** Connection failures (protocol errors) and handler exceptions answered as Internal: for the log. */
  onError?: (err: Error) => void;
  /** Calls one connection may have running at once; more are answered ResourceExhausted. */
  maxCallsPerConnection?: number;
}

export class TtrpcServer {
  readonly #handlers = new Map<string, Handler>();
  readonly #services = new Set<string>();
  readonly #connections = new Set<ServerConnection>();
  readonly #onError: (err: Error) => void;
  readonly #maxCalls: number;
  #listener: Server | null = null;
  #path: string | null = null;

  constructor(options: TtrpcServerOptions = {}) {
    this.#onError = options.onError ?? (() => {});
    this.#maxCalls = options.maxCallsPerConnection ?? 128;
  }

  /** Adds the handlers of one service, by method name. A method registered twice is a programming error. */
  register(service: string, methods: Record<string, Handler>): void {
    for (const [method, handler] of Object.entries(methods)) {
      const key = `${service}/${method}`;
      if (this.#handlers.has(key)) throw new Error(`ttrpc: ${key} is registered already`);
      this.#handlers.set(key, handler);
    }
    this.#services.add(service);
  }

  /**
   * Listens on the Unix socket `path`, mode 0600 unless `mode` says otherwise: only the owner
   * (containerd runs as the shim's user) may connect, as containerd's own shims do. A socket file
   * nobody listens on (left by a process that died) is replaced; one a live server answers on is
   * not: that fails with TTRPC_ADDRESS_IN_USE, so `start` can hand out the running shim's address.
   */
  async listen(path: string, options: { mode?: number } = {}): Promise<void> {
    if (this.#listener) throw new Error(`ttrpc: already listening on ${this.#path}`);
    let listener: Server;
    try {
      listener = await listenOn(path, (socket) => this.serve(socket));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err; // Node's error names the path
      if (await someoneListens(path)) {
        throw new TtrpcError('TTRPC_ADDRESS_IN_USE', `a server already listens on ${path}`, { cause: err });
      }
      rmSync(path, { force: true });
      listener = await listenOn(path, (socket) => this.serve(socket));
    }
    listener.on('error', (err) => this.#onError(err));
    chmodSync(path, options.mode ?? 0o600);
    this.#listener = listener;
    this.#path = path;
  }

  /** Serves one connected socket (what listen does for each connection it accepts). */
  serve(socket: Socket): void {
    const connection = new ServerConnection(socket, this.#handlers, this.#services, this.#maxCalls, this.#onError, () => {
      this.#connections.delete(connection);
    });
    this.#connections.add(connection);
  }

  /** Stops listening, removes the socket file, closes every connection and aborts running calls. */
  async close(): Promise<void> {
    const listener = this.#listener;
    this.#listener = null;
    for (const connection of [...this.#connections]) connection.close();
    if (listener) await new Promise<void>((resolve) => listener.close(() => resolve()));
    if (this.#path) rmSync(this.#path, { force: true });
    this.#path = null;
  }
}

class ServerConnection {
  readonly #channel: FrameChannel;
  /** Running calls by stream id; aborting one tells its handler the caller is gone. */
  readonly #calls = new Map<number, AbortController>();

  constructor(
    socket: Socket,
    private readonly handlers: ReadonlyMap<string, Handler>,
    private readonly services: ReadonlySet<string>,
    private readonly maxCalls: number,
    private readonly onError: (err: Error) => void,
    onClosed: () => void,
  ) {
    this.#channel = new FrameChannel(socket, (frame) => this.#onFrame(frame), (reason) => {
      const gone = new TtrpcError('TTRPC_CLOSED', 'ttrpc connection closed', reason ? { cause: reason } : undefined);
      for (const call of this.#calls.values()) call.abort(gone);
      this.#calls.clear();
      if (reason && !(reason instanceof TtrpcError && reason.code === 'TTRPC_CLOSED')) this.onError(reason);
      onClosed();
    });
  }

  close(): void {
    this.#channel.close();
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.Request:
        return this.#onRequest(frame);
      case FrameType.Response:
        throw protocolError(`ttrpc client sent a response frame (stream ${frame.streamId}); clients only send requests`);
      case FrameType.Data:
        // Data belongs to streaming calls, which no service here has; their requests were already
        // answered Unimplemented, so whatever data follows is dropped.
        return;
    }
  }

  #onRequest(frame: Frame): void {
    const id = frame.streamId;
    if (this.#calls.has(id)) throw protocolError(`ttrpc stream ${id} was opened again while its call is running`);
    if (id % 2 !== 1) return this.#answerError(id, StatusCode.InvalidArgument, `stream id ${id} must be odd for client-initiated streams`);
    let request: TtrpcRequest;
    try {
      request = common.Request.decode(frame.data);
    } catch (err) {
      if (!(err instanceof ProtoDecodeError)) throw err;
      return this.#answerError(id, StatusCode.InvalidArgument, err.message);
    }
    const name = `${request.service}/${request.method}`;
    if (frame.flags & (FrameFlag.RemoteOpen | FrameFlag.RemoteClosed)) {
      return this.#answerError(id, StatusCode.Unimplemented, `${name}: streaming calls are not supported`);
    }
    const handler = this.handlers.get(name);
    if (!handler) {
      const what = this.services.has(request.service) ? `method ${name}` : `service ${request.service}`;
      return this.#answerError(id, StatusCode.Unimplemented, `${what} is not implemented`);
    }
    if (this.#calls.size >= this.maxCalls) {
      return this.#answerError(id, StatusCode.ResourceExhausted, `${name}: more than ${this.maxCalls} calls running on this connection`);
    }
    this.#run(id, name, handler, request);
  }

  #run(id: number, name: string, handler: Handler, request: TtrpcRequest): void {
    const controller = new AbortController();
    this.#calls.set(id, controller);
    const timer = request.timeoutNano > 0
      ? setTimeout(() => controller.abort(new TtrpcError('TTRPC_TIMEOUT', `${name}: the caller's timeout passed`)), timeoutMs(request.timeoutNano))
      : null;
    const call: CallContext = {
      service: request.service,
      method: request.method,
      metadata: metadataRecord(request.metadata),
      timeoutNano: request.timeoutNano,
      signal: controller.signal,
    };
    // The call is forgotten before it is answered, so the client may reuse the id at once.
    const finish = (): void => {
      if (timer) clearTimeout(timer);
      if (this.#calls.get(id) === controller) this.#calls.delete(id);
    };
    Promise.resolve()
      .then(() => handler(request.payload, call))
      .then(
        (payload) => {
          finish();
          this.#answer(id, name, { status: { code: StatusCode.OK }, payload });
        },
        (err: unknown) => {
          finish();
          this.#answerFailure(id, name, err, controller.signal);
        },
      )
      // Answering does not throw by design; should it, the log hears of it, not the process.
      .catch((err: unknown) => this.onError(err instanceof Error ? err : new Error(String(err))));
  }

  #answerFailure(id: number, name: string, err: unknown, signal: AbortSignal): void {
    if (err instanceof RpcError) return this.#answerError(id, err.status, err.message);
    if (signal.aborted && signal.reason instanceof TtrpcError && signal.reason.code === 'TTRPC_TIMEOUT') {
      return this.#answerError(id, StatusCode.DeadlineExceeded, `${name}: ${(err as Error)?.message ?? String(err)}`);
    }
    const error = err instanceof Error ? err : new Error(String(err));
    this.onError(new Error(`ttrpc handler ${name} failed: ${error.message}`, { cause: error }));
    this.#answerError(id, StatusCode.Internal, `${name}: ${error.message}`);
  }

  #answerError(id: number, code: number, message: string): void {
    this.#answer(id, '', { status: { code, message } });
  }

  #answer(id: number, name: string, response: MessageInit<TtrpcResponse>): void {
    if (this.#channel.closed) return; // the caller is gone; nobody to answer
    let bytes: Buffer;
    try {
      bytes = common.Response.encode(response);
    } catch (err) {
      // Only a handler's answer can fail to encode (say, a payload that is not bytes): a bug here.
      this.onError(new Error(`ttrpc handler ${name}: its answer cannot be encoded: ${(err as Error).message}`, { cause: err }));
      bytes = common.Response.encode({ status: { code: StatusCode.Internal, message: `${name}: the answer cannot be encoded` } });
    }
    if (bytes.length > MAX_DATA_LENGTH) {
      bytes = common.Response.encode({ status: { code: StatusCode.ResourceExhausted, message: `${name}: answer of ${bytes.length} bytes exceeds the ${MAX_DATA_LENGTH}-byte ttrpc limit` } });
    }
    this.#channel.send(id, FrameType.Response, bytes);
  }
}

function listenOn(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const listener = createServer(onConnection);
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(path, () => {
      listener.off('error', reject);
      resolve(listener);
    });
  });
}

/** Whether a server accepts connections on the socket `path` (false: the file is stale). */
function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
}

/** The handler's timer: whole milliseconds, at least 1, within what setTimeout can hold. */
function timeoutMs(nanos: number): number {
  return Math.min(Math.max(1, Math.ceil(nanos / 1e6)), 2 ** 31 - 1);
}

function metadataRecord(entries: readonly { key: string; value: string }[]): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null);
  for (const { key, value } of entries) (out[key] ??= []).push(value);
  return out;
}
