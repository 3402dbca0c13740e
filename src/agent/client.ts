/**
 * Host-side client of the guest agent (docs/agent-protocol.md) over any byte stream: requests are
 * multiplexed by request id, and stream/exit frames are routed to AgentProcess objects by process id.
 */
import type { Duplex } from 'node:stream';
import { AgentError, describeValue, protocolError } from './errors.js';
import { deadline, hasDeadline, raceAbort, type CancelOptions } from './deadline.js';
import { AgentProcess, type ProcessLink } from './process.js';
import { execArguments, isProcessId, parseGuestInfo, resultError, type ExecOptions, type GuestInfo } from './requests.js';
import {
  encodeRequest,
  FrameDecoder,
  FrameType,
  frameTypeName,
  parseExitStatus,
  PROTOCOL_VERSION,
  type AgentResponse,
  type DataFrame,
  type ExitFrame,
  type Frame,
  type JsonObject,
  type StdinAckFrame,
} from './protocol.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Output the agent may send for a process before the exec RESPONSE that names it (the doc does not
 * forbid that order). More than this while an exec is outstanding is treated as a protocol error.
 */
const EARLY_FRAME_LIMIT = 4 * 1024 * 1024;
const UINT32_MAX = 0xffff_ffff;
/** Ops with dedicated methods: sending them through request() would lose track of the process. */
const RESERVED_OPS = new Set(['hello', 'exec', 'attach', 'create_container', 'exec_container']);

/** Ops other than exec whose result is a new guest process with streams (docs: Containers). */
export type ProcessOp = 'create_container' | 'exec_container';

export type RequestOptions = CancelOptions;
export type { ExecOptions, GuestInfo };

/** Opens the byte stream to the agent; `signal` fires when connect() gives up (timeout or abort). */
export type Dial = (signal: AbortSignal) => Promise<Duplex>;

export interface ConnectOptions {
  /** Deadline for dialling plus the hello exchange. Default 10 s; 0 = none. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Deadline of each request that does not set its own. Default 30 s; 0 = none. */
  requestTimeoutMs?: number;
}

type ProcessFrame = DataFrame | ExitFrame | StdinAckFrame;

interface Pending {
  op: string;
  /** Runs synchronously when the response arrives; turns the result into the caller's value. */
  accept(result: JsonObject): unknown;
  /** Runs synchronously after accept; protocol errors thrown here close the connection. */
  after?(value: unknown): void;
  /**
   * The request failed before accept ran. `mayStillSucceed`: the caller gave up (timeout/abort)
   * but the agent may yet carry it out; false for an error response, a closed connection, or a
   * request that was never sent.
   */
  onFailure?(mayStillSucceed: boolean): void;
  /** The response arrived after the caller stopped waiting (timeout/abort). */
  onLate?(response: AgentResponse): void;
  resolve(value: unknown): void;
  reject(err: AgentError, mayStillSucceed?: boolean): void;
  dispose(): void;
  exec: boolean;
}

export class AgentClient {
  readonly #stream: Duplex;
  readonly #decoder = new FrameDecoder();
  readonly #requestTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  /** Requests whose caller gave up; their ids stay reserved until the response arrives. */
  readonly #abandoned = new Map<number, Pending>();
  readonly #processes = new Map<number, AgentProcess>();
  /** Processes nobody holds (exec/attach abandoned): their frames are dropped. */
  readonly #discarded = new Set<number>();
  readonly #early = new Map<number, ProcessFrame[]>();
  #earlyBytes = 0;
  #execsOutstanding = 0;
  #nextId = 1;
  #closeReason: AgentError | null = null;
  #agent = '';
  readonly #link: ProcessLink;
  #resolveClosed!: (reason: AgentError) => void;
  /** Resolves (never rejects) with the reason once the connection is gone. */
  readonly closed: Promise<AgentError>;

  /**
   * Dials, then says hello (protocol v1). Rejects with AGENT_TIMEOUT / AGENT_ABORTED /
   * AGENT_CONNECT_FAILED / AGENT_CLOSED, AGENT_VERSION_MISMATCH when the agent answers with another
   * version, or the agent's own VERSION_MISMATCH.
   */
  static async connect(dial: Dial, options: ConnectOptions = {}): Promise<AgentClient> {
    const what = 'connecting to the agent';
    const limit = deadline(what, { signal: options.signal, timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS });
    try {
      let dialing: Promise<Duplex>;
      try {
        dialing = Promise.resolve(dial(limit.signal));
      } catch (err) {
        dialing = Promise.reject(err);
      }
      let stream: Duplex;
      try {
        stream = await raceAbort(what, dialing, limit.signal, (late) => late.destroy());
      } catch (err) {
        if (err instanceof AgentError) throw err;
        throw new AgentError('AGENT_CONNECT_FAILED', `${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      }
      const client = new AgentClient(stream, options);
      try {
        await client.#hello(limit.signal);
      } catch (err) {
        client.#fail(err instanceof AgentError ? err : new AgentError('AGENT_CLOSED', String(err), { cause: err }), false);
        throw err;
      }
      return client;
    } finally {
      limit.dispose();
    }
  }

  private constructor(stream: Duplex, options: ConnectOptions) {
    this.#stream = stream;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#link = {
      send: (frame) => this.#write(frame),
      request: (op, args, opts) => this.#call(op, args, opts, (result) => result),
    };
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('end', () => this.#fail(new AgentError('AGENT_CLOSED', 'the agent closed the connection'), false));
    stream.on('error', (err: Error) =>
      this.#fail(new AgentError('AGENT_CLOSED', `the connection to the agent failed: ${err.message}`, { cause: err }), false),
    );
    stream.on('close', () => this.#fail(new AgentError('AGENT_CLOSED', 'the connection to the agent closed'), false));
    stream.resume(); // in case the dialer left it paused
    if (stream.destroyed) this.#fail(new AgentError('AGENT_CLOSED', 'the connection to the agent was already closed'), false);
  }

  /** The agent's self-description from hello, e.g. "vc-agent 0.1.0". */
  get agent(): string {
    return this.#agent;
  }

  /** Why the connection is gone, or null while it is open. */
  get closeReason(): AgentError | null {
    return this.#closeReason;
  }

  /**
   * Sends one request and resolves with its `result` object. A guest error response rejects with
   * an AgentError carrying the guest's code and message. Use exec()/attach() for those ops.
   */
  async request(op: string, args: JsonObject = {}, options?: RequestOptions): Promise<JsonObject> {
    if (RESERVED_OPS.has(op)) throw new AgentError('AGENT_INVALID_ARGUMENT', `op ${JSON.stringify(op)} has its own method; request() does not send it`);
    return this.#call(op, args, options, (result) => result);
  }

  async guestInfo(options?: RequestOptions): Promise<GuestInfo> {
    return this.#call('guest_info', {}, options, parseGuestInfo);
  }

  /** Starts a process in the guest. A program that cannot run rejects with the agent's EXEC_FAILED. */
  async exec(exec: ExecOptions, options?: RequestOptions): Promise<AgentProcess> {
    const args = execArguments(exec);
    const tty = exec.tty === true;
    return this.#call('exec', args, options, (result) => this.#acceptExec(result, tty), {
      exec: true,
      after: (proc) => this.#replayEarly((proc as AgentProcess).id),
      onLate: (response) => this.#discardLateExec(response),
    });
  }

  /**
   * Sends an op whose result is a new process (a container's init, an exec in a container), with
   * the same stream handling as exec. `args` are checked by the caller; the agent checks them too.
   */
  async startProcess(op: ProcessOp, args: JsonObject, tty: boolean, options?: RequestOptions): Promise<AgentProcess> {
    return this.#call(op, args, options, (result) => this.#acceptExec(result, tty), {
      exec: true,
      after: (proc) => this.#replayEarly((proc as AgentProcess).id),
      onLate: (response) => this.#discardLateExec(response),
    });
  }

  /**
   * Moves a detached process to this connection; the agent then flushes its buffered output.
   * The v1 result does not say whether it is a TTY or what its pid is: `pid` is 0, and EXIT ends
   * whichever of stdout/stderr is still open. The client also sends `wait` for it, because EXIT
   * goes out only once: if the process exited while attached to an earlier connection, the `wait`
   * answer is the only place its status appears (the agent then forgets the process).
   */
  async attach(processId: number, options?: RequestOptions): Promise<AgentProcess> {
    if (!isProcessId(processId)) throw new AgentError('AGENT_INVALID_ARGUMENT', `process id ${describeValue(processId)} must be a non-zero u32`);
    if (this.#processes.has(processId)) throw new AgentError('AGENT_BUSY', `process ${processId} is already attached to this client`);
    if (this.#closeReason) throw this.#closedError('attach');
    // Registered before the request: the agent may flush buffered output before its response.
    const proc = new AgentProcess(this.#link, { id: processId, pid: 0, tty: false, strict: false });
    this.#processes.set(processId, proc);
    this.#discarded.delete(processId);
    return this.#call('attach', { process: processId }, options, () => proc, {
      after: () => this.#collectAttached(proc),
      onFailure: (mayStillSucceed) => {
        if (this.#processes.get(processId) !== proc) return;
        this.#processes.delete(processId);
        // Abandoned: the agent may still attach it here; then drop what it flushes.
        if (mayStillSucceed) this.#discarded.add(processId);
      },
    });
  }

  /** Asks the agent to sync, kill every process and power the VM off. */
  async shutdown(options?: RequestOptions): Promise<void> {
    await this.#call('shutdown', {}, options, () => undefined);
  }

  /**
   * Closes the connection: pending requests reject with AGENT_CLOSED, processes' streams end and
   * their wait() rejects unless EXIT already arrived. Guest processes keep running (detached).
   */
  async close(): Promise<void> {
    this.#fail(new AgentError('AGENT_CLOSED', 'the client closed the connection'), true);
    const stream = this.#stream;
    if (stream.closed) return;
    await new Promise<void>((resolve) => stream.once('close', resolve));
  }

  // --- requests -------------------------------------------------------------------------------

  async #hello(signal: AbortSignal): Promise<void> {
    this.#agent = await this.#call('hello', { version: PROTOCOL_VERSION }, { signal, timeoutMs: 0 }, (result) => {
      if (result.version !== PROTOCOL_VERSION) {
        throw new AgentError(
          'AGENT_VERSION_MISMATCH',
          `the agent answered hello with protocol version ${describeValue(result.version)}; this client speaks ${PROTOCOL_VERSION}`,
          { op: 'hello' },
        );
      }
      if (typeof result.agent !== 'string') throw resultError('hello', 'agent', 'a string', result.agent);
      return result.agent;
    });
  }

  #call<T>(
    op: string,
    args: JsonObject,
    options: RequestOptions | undefined,
    accept: (result: JsonObject) => T,
    hooks: Partial<Pick<Pending, 'after' | 'onFailure' | 'onLate' | 'exec'>> = {},
  ): Promise<T> {
    const fail = (err: AgentError): Promise<T> => {
      hooks.onFailure?.(false);
      return Promise.reject(err);
    };
    if (this.#closeReason) return fail(this.#closedError(op));
    const signal = options?.signal;
    if (signal?.aborted) return fail(requestAbortError(op, signal.reason));
    let id: number;
    let frame: Buffer;
    try {
      id = this.#allocateId();
      frame = encodeRequest(id, op, args);
    } catch (err) {
      return fail(err as AgentError);
    }
    const timeoutMs = options?.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => this.#abandon(id, requestAbortError(op, signal?.reason));
      const entry: Pending = {
        op,
        accept,
        after: hooks.after,
        onFailure: hooks.onFailure,
        onLate: hooks.onLate,
        exec: hooks.exec === true,
        resolve: resolve as (value: unknown) => void,
        reject: (err, mayStillSucceed = false) => {
          entry.onFailure?.(mayStillSucceed);
          reject(err);
        },
        dispose: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      if (hasDeadline(timeoutMs)) {
        timer = setTimeout(
          () => this.#abandon(id, new AgentError('AGENT_TIMEOUT', `${op} got no response within ${timeoutMs} ms`, { op })),
          timeoutMs,
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, entry);
      if (entry.exec) this.#execsOutstanding += 1;
      this.#write(frame);
    });
  }

  #allocateId(): number {
    if (this.#pending.size + this.#abandoned.size >= UINT32_MAX) {
      throw new AgentError('AGENT_BUSY', 'every request id is in use');
    }
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id === UINT32_MAX ? 1 : id + 1;
      if (!this.#pending.has(id) && !this.#abandoned.has(id)) return id;
    }
  }

  /** The caller stops waiting; the id stays reserved so the late response is recognised. */
  #abandon(id: number, err: AgentError): void {
    const entry = this.#pending.get(id);
    if (!entry) return;
    this.#pending.delete(id);
    this.#abandoned.set(id, entry);
    entry.dispose();
    entry.reject(err, true);
  }

  #closedError(op: string): AgentError {
    const reason = this.#closeReason!;
    return new AgentError(reason.code, `${op}: ${reason.message}`, { cause: reason, op });
  }

  #write(frame: Buffer): void {
    if (this.#closeReason) return;
    this.#stream.write(frame);
  }

  // --- incoming frames ------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    if (this.#closeReason) return;
    try {
      this.#decoder.feed(chunk, (frame) => this.#onFrame(frame));
    } catch (err) {
      if (err instanceof AgentError) {
        this.#fail(err, false);
        return;
      }
      // Not ours: most likely a stream consumer's 'data' handler threw while we pushed to it.
      // The rest of the chunk is lost, so the connection cannot continue; let the error surface.
      this.#fail(new AgentError('AGENT_CLOSED', `frame handling threw: ${String(err)}`, { cause: err }), false);
      throw err;
    }
  }

  #onFrame(frame: Frame): void {
    if (this.#closeReason) return; // e.g. a stream consumer closed the client from a 'data' handler
    switch (frame.type) {
      case FrameType.RESPONSE:
        this.#onResponse(frame.id, frame.response);
        return;
      case FrameType.REQUEST:
      case FrameType.STDIN:
        throw protocolError(`${frameTypeName(frame.type)} frame (id ${frame.id}) must not be sent by the agent`);
      default:
        this.#routeProcessFrame(frame);
    }
  }

  #onResponse(id: number, response: AgentResponse): void {
    if (id === 0 && !response.ok) {
      // Request ids are never 0: the agent uses id 0 to say why it is dropping our input
      // (native/agent/channel.h, conn_protocol_error; not in the v1 doc).
      throw protocolError(`the agent rejected this connection's input: ${response.error.code}: ${response.error.message}`);
    }
    const entry = this.#pending.get(id);
    if (!entry) {
      const late = this.#abandoned.get(id);
      if (!late) throw protocolError(`RESPONSE frame for request id ${id}, which is not outstanding`);
      this.#abandoned.delete(id);
      try {
        late.onLate?.(response);
      } finally {
        this.#execDone(late);
      }
      return;
    }
    this.#pending.delete(id);
    entry.dispose();
    try {
      this.#settle(entry, response);
    } finally {
      // After settle: an exec's `after` replays the early frames this would otherwise drop.
      this.#execDone(entry);
    }
  }

  #settle(entry: Pending, response: AgentResponse): void {
    if (!response.ok) {
      entry.reject(new AgentError(response.error.code, response.error.message, { op: entry.op }));
      return;
    }
    let value: unknown;
    try {
      value = entry.accept(response.result);
    } catch (err) {
      entry.reject(err instanceof AgentError ? err : new AgentError('AGENT_PROTOCOL', String(err), { cause: err, op: entry.op }));
      return;
    }
    entry.resolve(value);
    entry.after?.(value);
  }

  #execDone(entry: Pending): void {
    if (!entry.exec) return;
    this.#execsOutstanding -= 1;
    if (this.#execsOutstanding === 0) {
      this.#early.clear();
      this.#earlyBytes = 0;
    }
  }

  #routeProcessFrame(frame: ProcessFrame): void {
    const proc = this.#processes.get(frame.id);
    if (proc) {
      proc.handleFrame(frame); // throws on a violation: the process then fails with the connection
      if (frame.type === FrameType.EXIT) this.#processes.delete(frame.id);
      return;
    }
    if (this.#discarded.has(frame.id)) {
      if (frame.type === FrameType.EXIT) this.#discarded.delete(frame.id);
      return;
    }
    if (this.#execsOutstanding > 0) {
      // Possibly output of a process whose exec RESPONSE is still on its way.
      const size = frame.type === FrameType.EXIT || frame.type === FrameType.STDIN_ACK ? 0 : frame.data.length;
      this.#earlyBytes += size + 16;
      if (this.#earlyBytes > EARLY_FRAME_LIMIT) {
        throw protocolError(`more than ${EARLY_FRAME_LIMIT} bytes of frames for process ids no exec has returned (last: ${frame.id})`);
      }
      const list = this.#early.get(frame.id) ?? [];
      list.push(frame);
      this.#early.set(frame.id, list);
      return;
    }
    // A late acknowledgement for a process that has exited is harmless.
    if (frame.type === FrameType.STDIN_ACK) return;
    throw protocolError(`${frameTypeName(frame.type)} frame for process ${frame.id}, which is not attached to this connection`);
  }

  #replayEarly(id: number): void {
    const frames = this.#early.get(id);
    if (!frames) return;
    this.#early.delete(id);
    for (const frame of frames) this.#routeProcessFrame(frame);
  }

  #acceptExec(result: JsonObject, tty: boolean): AgentProcess {
    const id = result.process;
    if (!isProcessId(id)) throw resultError('exec', 'process', 'a non-zero u32', id);
    if (this.#processes.has(id)) throw resultError('exec', 'process', 'an id not in use', id);
    const pid = result.pid;
    if (!Number.isInteger(pid) || (pid as number) <= 0) {
      this.#discarded.add(id);
      throw resultError('exec', 'pid', 'a positive integer', pid);
    }
    const proc = new AgentProcess(this.#link, { id, pid: pid as number, tty, strict: true });
    this.#processes.set(id, proc);
    return proc;
  }

  #collectAttached(proc: AgentProcess): void {
    const accept = (result: JsonObject): void => {
      // Synchronous, in the frame handler: the agent sends nothing for the process after this.
      const status = parseExitStatus(result, 'wait result');
      proc.handleWaitResult(status);
      if (this.#processes.get(proc.id) === proc) this.#processes.delete(proc.id);
    };
    this.#call('wait', { process: proc.id }, { timeoutMs: 0 }, accept).catch((err: AgentError) => proc.handleWaitFailed(err));
  }

  /** The caller gave up on this exec; the process it started is unwanted: kill it, drop its output. */
  #discardLateExec(response: AgentResponse): void {
    if (!response.ok || !isProcessId(response.result.process)) return;
    const id = response.result.process;
    this.#early.delete(id);
    this.#discarded.add(id);
    this.#call('signal', { process: id, signal: 9 }, undefined, () => undefined).catch(() => {});
  }

  // --- teardown -------------------------------------------------------------------------------

  #fail(reason: AgentError, graceful: boolean): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#abandoned.clear();
    this.#early.clear();
    this.#execsOutstanding = 0;
    for (const entry of pending) {
      entry.dispose();
      entry.reject(new AgentError(reason.code, `${entry.op}: ${reason.message}`, { cause: reason, op: entry.op }));
    }
    const processes = [...this.#processes.values()];
    this.#processes.clear();
    this.#discarded.clear();
    for (const proc of processes) proc.handleClosed(reason);
    this.#resolveClosed(reason);
    const stream = this.#stream;
    if (graceful && !stream.destroyed) {
      // Let queued frames (e.g. a stdin close) go out, but do not wait on the peer for long.
      const timer = setTimeout(() => stream.destroy(), 1000);
      timer.unref();
      stream.end(() => {
        clearTimeout(timer);
        stream.destroy();
      });
    } else {
      stream.destroy();
    }
  }
}

/** The error a request's caller sees when its signal fires; deadline errors keep their code. */
function requestAbortError(op: string, reason: unknown): AgentError {
  if (reason instanceof AgentError) {
    return reason.op === op ? reason : new AgentError(reason.code, `${op}: ${reason.message}`, { cause: reason, op });
  }
  return new AgentError('AGENT_ABORTED', `${op} was aborted`, { cause: reason, op });
}
