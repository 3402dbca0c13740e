// The request side of an agent connection: request ids, deadlines and aborts, and matching each
// RESPONSE to its caller. A request whose caller gave up keeps its id until the late response.
import { AgentError, protocolError } from './errors.js';
import { hasDeadline, type CancelOptions } from './deadline.js';
import { encodeRequest, type AgentResponse, type JsonObject } from './protocol.js';

const UINT32_MAX = 0xffff_ffff;

export interface Pending {
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

export type CallHooks = Partial<Pick<Pending, 'after' | 'onFailure' | 'onLate' | 'exec'>>;

/** What the table needs of its connection. */
export interface CallLink {
  write(frame: Buffer): void;
  /** Why the connection is gone, or null while it is open. */
  closeReason(): AgentError | null;
  /** An exec-like request (its result names a new process) went out / was settled or given up. */
  execStarted(): void;
  execDone(): void;
}

export class CallTable {
  readonly #pending = new Map<number, Pending>();
  /** Requests whose caller gave up; their ids stay reserved until the response arrives. */
  readonly #abandoned = new Map<number, Pending>();
  #nextId = 1;

  constructor(
    private readonly link: CallLink,
    private readonly defaultTimeoutMs: number,
  ) {}

  call<T>(op: string, args: JsonObject, options: CancelOptions | undefined, accept: (result: JsonObject) => T, hooks: CallHooks = {}): Promise<T> {
    const fail = (err: AgentError): Promise<T> => {
      hooks.onFailure?.(false);
      return Promise.reject(err);
    };
    const closed = this.link.closeReason();
    if (closed) return fail(closedError(closed, op));
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
    const timeoutMs = options?.timeoutMs ?? this.defaultTimeoutMs;
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
      if (entry.exec) this.link.execStarted();
      this.link.write(frame);
    });
  }

  /** Settles the request the agent answered (or hands a late answer to its onLate). */
  respond(id: number, response: AgentResponse): void {
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
        if (late.exec) this.link.execDone();
      }
      return;
    }
    this.#pending.delete(id);
    entry.dispose();
    try {
      settle(entry, response);
    } finally {
      // After settle: an exec's `after` replays the early frames this would otherwise drop.
      if (entry.exec) this.link.execDone();
    }
  }

  /** The connection is gone: every outstanding request rejects with `reason`. */
  failAll(reason: AgentError): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#abandoned.clear();
    for (const entry of pending) {
      entry.dispose();
      entry.reject(closedError(reason, entry.op));
    }
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
}

function settle(entry: Pending, response: AgentResponse): void {
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

/** The error of a request made (or outstanding) when the connection closed for `reason`. */
export function closedError(reason: AgentError, op: string): AgentError {
  return new AgentError(reason.code, `${op}: ${reason.message}`, { cause: reason, op });
}

/** The error a request's caller sees when its signal fires; deadline errors keep their code. */
function requestAbortError(op: string, reason: unknown): AgentError {
  if (reason instanceof AgentError) {
    return reason.op === op ? reason : new AgentError(reason.code, `${op}: ${reason.message}`, { cause: reason, op });
  }
  return new AgentError('AGENT_ABORTED', `${op} was aborted`, { cause: reason, op });
}
