/**
 * A process running in the guest, as seen through one agent connection: Node streams for its stdio,
 * wait() for its exit, kill() and resize(). Created by AgentClient.exec() / attach().
 */
import { constants as osConstants } from 'node:os';
import { Readable, Writable } from 'node:stream';
import { AgentError, protocolError } from './errors.js';
import type { CancelOptions } from './deadline.js';
import {
  encodeFrame,
  FrameType,
  MAX_PAYLOAD_SIZE,
  STDIN_WINDOW,
  type DataFrame,
  type ExitFrame,
  type ExitStatus,
  type JsonObject,
  type StdinAckFrame,
} from './protocol.js';

/** What a process needs from its connection. Implemented by AgentClient. */
export interface ProcessLink {
  /** Queues a frame; does nothing once the connection is closed. */
  send(frame: Buffer): void;
  request(op: string, args: JsonObject, options?: CancelOptions): Promise<JsonObject>;
}

export interface ProcessInit {
  id: number;
  pid: number;
  tty: boolean;
  /**
   * True for processes this connection exec'ed: their TTY-ness is known, so STDERR frames for a
   * TTY and EXIT before both end-of-stream frames are protocol errors. False after attach(), where
   * the agent does not say whether it is a TTY and earlier end frames may have gone to another
   * connection: EXIT then ends whatever is still open.
   */
  strict: boolean;
}

/** The smallest STDIN frame sent while more of the write is waiting for the window. */
const STDIN_MIN_FRAME = STDIN_WINDOW / 4;

type Deferred<T> = { promise: Promise<T>; resolve(value: T): void; reject(err: unknown): void };
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // wait() may never be called; a rejection nobody asked for must not crash the host process.
  promise.catch(() => {});
  return { promise, resolve, reject };
}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (err?: Error | null) => void;
}

export class AgentProcess {
  /** Agent process id (the protocol's id, not the guest pid). */
  readonly id: number;
  /** Guest pid; 0 (never a real pid here) after attach(), whose result does not carry it in v1. */
  readonly pid: number;
  readonly tty: boolean;
  /** Honours the protocol's 256 KiB STDIN window; end() closes the guest's stdin. */
  readonly stdin: Writable;
  /** For a TTY: everything the terminal writes. */
  readonly stdout: Readable;
  /** For a TTY: ends at once, empty. */
  readonly stderr: Readable;

  readonly #link: ProcessLink;
  readonly #strict: boolean;
  readonly #exit = deferred<ExitStatus>();
  #status: ExitStatus | null = null;
  #gone = false; // exited or connection closed: nothing more is sent for this process
  #stdoutEnded = false;
  #stderrEnded = false;
  #stdinClosed = false;
  #unacked = 0;
  #pendingWrite: PendingWrite | null = null;

  /** @internal Use AgentClient.exec() or attach(). */
  constructor(link: ProcessLink, init: ProcessInit) {
    this.#link = link;
    this.id = init.id;
    this.pid = init.pid;
    this.tty = init.tty;
    this.#strict = init.strict;
    // Output is pushed as it arrives, without a limit: v1 has no per-process window towards the
    // host, and pausing the socket for one slow reader would stall every other process and
    // request on the connection (and deadlock a reader that awaits a request).
    this.stdout = new Readable({ read() {} });
    this.stderr = new Readable({ read() {} });
    if (this.tty && this.#strict) {
      this.#stderrEnded = true;
      this.stderr.push(null);
    }
    this.stdin = new Writable({
      write: (chunk: Buffer, _encoding, callback) => this.#writeStdin(chunk, callback),
      final: (callback) => {
        this.#closeStdin();
        callback();
      },
      destroy: (err, callback) => {
        this.#releasePendingWrite(err ?? new AgentError('AGENT_CLOSED', `stdin of process ${this.id} was closed before this write was sent`));
        this.#closeStdin();
        callback(err);
      },
    });
  }

  /** Whether EXIT has been received. */
  get exited(): boolean {
    return this.#status !== null;
  }

  /**
   * Resolves once EXIT has arrived and stdout/stderr have been delivered: each has ended or been
   * destroyed, unless nobody was reading it when EXIT arrived (then its data stays buffered in the
   * stream and waiting for it would hang). Rejects if the connection is lost before EXIT.
   */
  wait(): Promise<ExitStatus> {
    return this.#exit.promise;
  }

  /** Sends `signal` to the process. A name is mapped to its Linux number (os.constants.signals). */
  async kill(signal: NodeJS.Signals | number = 'SIGTERM', options?: CancelOptions): Promise<void> {
    const number = signalNumber(signal);
    if (this.#status) return; // already exited: nothing to signal
    await this.#link.request('signal', { process: this.id, signal: number }, options);
  }

  /** Resizes the process's terminal (TTY processes only; the agent answers BAD_REQUEST otherwise). */
  async resize(rows: number, cols: number, options?: CancelOptions): Promise<void> {
    checkDimension('rows', rows);
    checkDimension('cols', cols);
    await this.#link.request('resize', { process: this.id, rows, cols }, options);
  }

  // --- called by AgentClient --------------------------------------------------------------------

  /** @internal Routes a frame for this process; throws AgentError('AGENT_PROTOCOL') on a violation. */
  handleFrame(frame: DataFrame | ExitFrame | StdinAckFrame): void {
    switch (frame.type) {
      case FrameType.STDOUT:
        if (this.#stdoutEnded) throw protocolError(`STDOUT frame for process ${this.id} after the end of its stdout`);
        if (frame.data.length === 0) {
          this.#stdoutEnded = true;
          this.stdout.push(null);
        } else this.stdout.push(frame.data);
        return;
      case FrameType.STDERR:
        if (this.tty && this.#strict) throw protocolError(`STDERR frame for process ${this.id}, which is a TTY process`);
        if (this.#stderrEnded) throw protocolError(`STDERR frame for process ${this.id} after the end of its stderr`);
        if (frame.data.length === 0) {
          this.#stderrEnded = true;
          this.stderr.push(null);
        } else this.stderr.push(frame.data);
        return;
      case FrameType.STDIN_ACK:
        // Clamped rather than rejected: after attach() the agent may acknowledge bytes that were
        // sent over an earlier connection.
        this.#unacked = Math.max(0, this.#unacked - frame.count);
        this.#pumpStdin();
        return;
      case FrameType.EXIT:
        this.#handleExit(frame.status);
        return;
      case FrameType.STDIN:
        throw protocolError(`STDIN frame for process ${this.id} sent by the agent`);
    }
  }

  /** @internal The connection is gone: streams end with what arrived, wait() rejects unless EXIT came. */
  handleClosed(reason: AgentError): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#endOutput();
    this.stdin.destroy();
    this.#exit.reject(new AgentError(reason.code, `process ${this.id}: ${reason.message}`, { cause: reason, op: reason.op }));
  }

  /** @internal attach() asked `wait`: its answer is the status unless EXIT came first. */
  handleWaitResult(status: ExitStatus): void {
    if (this.#gone) return;
    this.#handleExit(status);
  }

  /** @internal The `wait` that attach() sent failed (e.g. another connection collected the status). */
  handleWaitFailed(reason: AgentError): void {
    this.handleClosed(reason);
  }

  // --- internals ------------------------------------------------------------------------------

  #handleExit(status: ExitStatus): void {
    if (this.#strict && (!this.#stdoutEnded || !this.#stderrEnded)) {
      const open = [!this.#stdoutEnded && 'stdout', !this.#stderrEnded && 'stderr'].filter(Boolean).join(' and ');
      throw protocolError(`EXIT frame for process ${this.id} before the end of its ${open}`);
    }
    this.#status = status;
    this.#gone = true;
    this.#endOutput();
    this.stdin.destroy();
    Promise.all([delivered(this.stdout), delivered(this.stderr)]).then(() => this.#exit.resolve(status));
  }

  #endOutput(): void {
    if (!this.#stdoutEnded) {
      this.#stdoutEnded = true;
      this.stdout.push(null);
    }
    if (!this.#stderrEnded) {
      this.#stderrEnded = true;
      this.stderr.push(null);
    }
  }

  #writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void {
    // An empty STDIN frame means "close stdin", so an empty write must send nothing.
    if (chunk.length === 0) return callback();
    if (this.#gone) return callback(new AgentError('AGENT_CLOSED', `process ${this.id} has exited or its connection is closed`));
    this.#pendingWrite = { chunk, offset: 0, callback };
    this.#pumpStdin();
  }

  /** Sends as much of the pending write as the window allows; completes it once all is sent. */
  #pumpStdin(): void {
    const write = this.#pendingWrite;
    if (!write || this.#gone) return;
    while (write.offset < write.chunk.length) {
      const room = STDIN_WINDOW - this.#unacked;
      // Wait for a worthwhile window rather than answer each small STDIN_ACK with a frame as
      // small: every frame costs a wakeup and a packet at each hop (host socket, VMM, guest
      // kernel, agent). Over hybrid vsock the acks come back a few KiB at a time, and sending
      // on any room made frames of ≈ 14 KiB on average (≈ 70 KiB to QEMU's virtio-serial).
      if (room < Math.min(STDIN_MIN_FRAME, write.chunk.length - write.offset)) return; // resumed by a STDIN_ACK
      const size = Math.min(room, MAX_PAYLOAD_SIZE, write.chunk.length - write.offset);
      this.#link.send(encodeFrame(FrameType.STDIN, this.id, write.chunk.subarray(write.offset, write.offset + size)));
      this.#unacked += size;
      write.offset += size;
    }
    this.#pendingWrite = null;
    write.callback();
  }

  #releasePendingWrite(err: Error): void {
    const write = this.#pendingWrite;
    this.#pendingWrite = null;
    write?.callback(err);
  }

  #closeStdin(): void {
    if (this.#stdinClosed || this.#gone) return;
    this.#stdinClosed = true;
    this.#link.send(encodeFrame(FrameType.STDIN, this.id));
  }
}

/** Resolves when the stream has been consumed to its end (or destroyed), or at once if nobody reads it. */
function delivered(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  if (stream.readableFlowing === null) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') {
    if (!Number.isInteger(signal) || signal < 0 || signal > 64) {
      throw new AgentError('AGENT_INVALID_ARGUMENT', `signal ${signal} is not a Linux signal number (0..64)`);
    }
    return signal;
  }
  const number = (osConstants.signals as Record<string, number | undefined>)[signal];
  if (number === undefined) throw new AgentError('AGENT_INVALID_ARGUMENT', `signal ${JSON.stringify(signal)} is not a known signal name`);
  return number;
}

function checkDimension(name: string, value: number): void {
  // Same range as the agent and struct winsize (0 = unknown).
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new AgentError('AGENT_INVALID_ARGUMENT', `${name} ${value} must be an integer 0..65535`);
  }
}
