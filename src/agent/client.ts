/**
 * Host-side client of the guest agent (docs/agent-protocol.md) over any byte stream: requests are
 * multiplexed by request id, and stream/exit frames are routed to AgentProcess objects by process id.
 */
import type { Duplex } from 'node:stream';
import { CallTable, closedError, type CallHooks } from './calls.js';
import { AgentError, describeValue, protocolError } from './errors.js';
import { deadline, raceAbort, type CancelOptions } from './deadline.js';
import type { AgentProcess, ProcessLink } from './process.js';
import { ProcessRouter } from './process-router.js';
import { execArguments, isProcessId, parseGuestInfo, resultError, type ExecOptions, type GuestInfo } from './requests.js';
import { FrameDecoder, parseExitStatus } from './decoder.js';
import { networkArguments, parseConfiguredInterfaces, type ConfiguredInterface, type NetworkConfig } from './network.js';
import { AgentForward, forwardArguments, forwardTargetName, type ForwardTarget } from './forward.js';
import { FrameType, frameTypeName, PROTOCOL_VERSION, type Frame, type JsonObject } from './protocol.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Ops with dedicated methods: sending them through request() would lose track of the process. */
const RESERVED_OPS = new Set(['hello', 'exec', 'attach', 'create_container', 'exec_container', 'forward']);

/** Ops other than exec whose result is a new guest process with streams (docs: Containers). */
export type ProcessOp = 'create_container' | 'exec_container';

export type RequestOptions = CancelOptions;
export type { ExecOptions, GuestInfo, NetworkConfig, ConfiguredInterface, ForwardTarget };

/** Opens the byte stream to the agent; `signal` fires when connect() gives up (timeout or abort). */
export type Dial = (signal: AbortSignal) => Promise<Duplex>;

export interface ConnectOptions {
  /** Deadline for dialling plus the hello exchange. Default 10 s; 0 = none. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Deadline of each request that does not set its own. Default 30 s; 0 = none. */
  requestTimeoutMs?: number;
  /**
   * Send hello again when it is not answered within this many ms (default: never). For streams
   * that sessions share one after another (a virtio-serial port): a client killed part-way can
   * leave the agent waiting for the rest of a frame, which then takes in the next hello; the
   * bytes of a second hello complete that frame and let the agent find a hello again (the
   * agent's resync, native/agent/channel.cc). An earlier hello answered late is ignored.
   */
  helloRetryMs?: number;
}

export class AgentClient {
  readonly #stream: Duplex;
  readonly #decoder = new FrameDecoder();
  readonly #calls: CallTable;
  readonly #router: ProcessRouter;
  #closeReason: AgentError | null = null;
  #agent = '';
  /**
   * Until hello is answered, a frame can only be left over from an earlier session on a shared
   * stream (a virtio-serial port: the agent may answer the previous host's input after this one
   * connected), so such frames are dropped, the agent's id-0 rejection of that input included.
   */
  #helloAnswered = false;
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
        await client.#hello(limit.signal, options.helloRetryMs ?? 0);
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
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#link = {
      send: (frame) => this.#write(frame),
      request: (op, args, opts) => this.#call(op, args, opts, (result) => result),
    };
    this.#router = new ProcessRouter(this.#link);
    this.#calls = new CallTable({
      write: (frame) => this.#write(frame),
      closeReason: () => this.#closeReason,
      execStarted: () => this.#router.execStarted(),
      execDone: () => this.#router.execDone(),
    }, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
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
    return this.#call('exec', args, options, (result) => this.#router.acceptExec(result, tty), this.#execHooks);
  }

  /**
   * Sends an op whose result is a new process (a container's init, an exec in a container), with
   * the same stream handling as exec. `args` are checked by the caller; the agent checks them too.
   */
  async startProcess(op: ProcessOp, args: JsonObject, tty: boolean, options?: RequestOptions): Promise<AgentProcess> {
    return this.#call(op, args, options, (result) => this.#router.acceptExec(result, tty), this.#execHooks);
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
    if (this.#router.has(processId)) throw new AgentError('AGENT_BUSY', `process ${processId} is already attached to this client`);
    if (this.#closeReason) throw closedError(this.#closeReason, 'attach');
    // Registered before the request: the agent may flush buffered output before its response.
    const proc = this.#router.attach(processId);
    return this.#call('attach', { process: processId }, options, () => proc, {
      after: () => this.#collectAttached(proc),
      // Abandoned: the agent may still attach it here; then drop what it flushes.
      onFailure: (mayStillSucceed) => this.#router.forget(proc, mayStillSucceed),
    });
  }

  /**
   * Configures the guest's network (docs/agent-protocol.md, "Network"): interfaces by MAC, routes,
   * and the pod's resolv.conf/hosts/hostname. The arguments are checked first (AGENT_INVALID_ARGUMENT
   * naming the field and value); the agent's NOT_FOUND / NETWORK_FAILED name the interface or route.
   */
  async configureNetwork(config: NetworkConfig, options?: RequestOptions): Promise<ConfiguredInterface[]> {
    const args = networkArguments(config);
    return this.#call('configure_network', args, options, parseConfiguredInterfaces);
  }

  /**
   * Opens a TCP connection from the guest to `host:port` (default 127.0.0.1, the loopback every
   * container shares) and returns it as a Duplex (docs/agent-protocol.md, "Port forwarding"). Many
   * forwards share one connection. The port and host are checked first (AGENT_INVALID_ARGUMENT);
   * a connect the guest cannot make rejects with the agent's FORWARD_FAILED.
   */
  async forward(port: number, target: ForwardTarget = {}, options?: RequestOptions): Promise<AgentForward> {
    const args = forwardArguments(port, target);
    const name = forwardTargetName(port, target.host);
    return this.#call('forward', args, options, (result) => new AgentForward(this.#router.acceptForward(result), name), this.#execHooks);
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

  async #hello(signal: AbortSignal, retryMs: number): Promise<void> {
    for (;;) {
      try {
        this.#agent = await this.#helloOnce(signal, retryMs);
        return;
      } catch (err) {
        // Abandoned (its answer, if one comes, is dropped as late); the next hello goes out.
        if (retryMs > 0 && (err as AgentError).code === 'AGENT_TIMEOUT' && !signal.aborted && !this.#closeReason) continue;
        throw err;
      }
    }
  }

  #helloOnce(signal: AbortSignal, timeoutMs: number): Promise<string> {
    return this.#call('hello', { version: PROTOCOL_VERSION }, { signal, timeoutMs }, (result) => {
      this.#helloAnswered = true; // in the frame handler, before any frame that follows the answer
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

  #call<T>(op: string, args: JsonObject, options: RequestOptions | undefined, accept: (result: JsonObject) => T, hooks?: CallHooks): Promise<T> {
    return this.#calls.call(op, args, options, accept, hooks);
  }

  /** For ops whose result is a new process: frames that came before the result are replayed. */
  readonly #execHooks: CallHooks = {
    exec: true,
    after: (proc) => this.#router.replayEarly((proc as AgentProcess).id),
    onLate: (response) => {
      // The caller gave up on this exec; the process it started is unwanted: kill it, drop its output.
      const id = this.#router.discardLate(response);
      if (id !== undefined) this.#call('signal', { process: id, signal: 9 }, undefined, () => undefined).catch(() => {});
    },
  };

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
    if (!this.#helloAnswered && (frame.type !== FrameType.RESPONSE || frame.id === 0)) return;
    switch (frame.type) {
      case FrameType.RESPONSE:
        this.#calls.respond(frame.id, frame.response);
        return;
      case FrameType.REQUEST:
      case FrameType.STDIN:
        throw protocolError(`${frameTypeName(frame.type)} frame (id ${frame.id}) must not be sent by the agent`);
      default:
        this.#router.route(frame);
    }
  }

  #collectAttached(proc: AgentProcess): void {
    const accept = (result: JsonObject): void => {
      // Synchronous, in the frame handler: the agent sends nothing for the process after this.
      const status = parseExitStatus(result, 'wait result');
      proc.handleWaitResult(status);
      this.#router.forget(proc);
    };
    this.#call('wait', { process: proc.id }, { timeoutMs: 0 }, accept).catch((err: AgentError) => proc.handleWaitFailed(err));
  }

  // --- teardown -------------------------------------------------------------------------------

  #fail(reason: AgentError, graceful: boolean): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    this.#router.stopWaitingForExecs();
    this.#calls.failAll(reason);
    this.#router.closeAll(reason);
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
