/**
 * The daemon's side of one holder connection, once its HELLO was accepted: the process's output to
 * the holder (STDOUT/STDERR frames; a stream pauses while the holder's socket is not draining), the
 * holder's input, signals and window size to the process, and EXIT once the process has gone and
 * all of its output was sent.
 */
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import type { ExitStatus, PodProcess } from '../api/enter.js';
import { dataFrames, encodeFrame, exitPayload, Frame, type DecodedFrame } from './frames.js';
import type { ExitRecord } from './state-store.js';

/** A process whose VM (or agent connection) went away: the holder exits 255, as the shim reports it. */
export const VM_GONE: ExitRecord = { kind: 'exited', value: 255 };

export function exitRecordOf(exit: ExitStatus): ExitRecord {
  if (exit.exitCode !== null) return { kind: 'exited', value: exit.exitCode };
  const number = exit.signal ? (constants.signals as Record<string, number>)[exit.signal] : undefined;
  return number !== undefined ? { kind: 'signalled', value: number } : VM_GONE;
}

/** The exit as engines see a process's status: the code, or 128 + the signal. */
export function exitStatusNumber(exit: ExitRecord): number {
  return exit.kind === 'exited' ? exit.value : 128 + exit.value;
}

export interface LinkEvents {
  onWarning(message: string): void;
}

export class HolderLink {
  #closed = false;

  constructor(
    private readonly socket: Socket,
    private readonly proc: PodProcess,
    exit: Promise<ExitRecord>,
    private readonly events: LinkEvents,
  ) {
    socket.on('close', () => this.#detach());
    socket.on('error', () => this.#detach());
    this.#pump(proc.stdout, Frame.STDOUT);
    this.#pump(proc.stderr, Frame.STDERR);
    proc.stdin.on('error', () => {});
    void exit.then(async (status) => {
      await Promise.race([Promise.all([ended(proc.stdout), ended(proc.stderr)]), delay(2000)]);
      if (this.#closed) return;
      socket.end(encodeFrame(Frame.EXIT, exitPayload(status.kind, status.value)));
      this.#closed = true;
    });
  }

  /** A frame from the holder after HELLO. */
  onFrame(frame: DecodedFrame): void {
    const { proc } = this;
    switch (frame.type) {
      case Frame.STDIN:
        if (!proc.stdin.write(frame.payload)) {
          // The holder stops reading its stdin while our socket is not read.
          this.socket.pause();
          proc.stdin.once('drain', () => this.socket.resume());
        }
        return;
      case Frame.STDIN_EOF:
        proc.stdin.end();
        return;
      case Frame.SIGNAL:
        if (frame.payload.length !== 1) return this.#protocolError(`SIGNAL: payload of ${frame.payload.length} bytes, expected 1`);
        proc.kill(frame.payload[0]!).catch((err: Error) => this.events.onWarning(`forwarding signal ${frame.payload[0]}: ${err.message}`));
        return;
      case Frame.RESIZE:
        if (frame.payload.length !== 4) return this.#protocolError(`RESIZE: payload of ${frame.payload.length} bytes, expected 4`);
        proc.resize(frame.payload.readUInt16BE(0), frame.payload.readUInt16BE(2)).catch((err: Error) => this.events.onWarning(`resize: ${err.message}`));
        return;
      default:
        this.#protocolError(`unexpected frame type ${frame.type} from a holder`);
    }
  }

  #pump(stream: Readable, type: number): void {
    stream.on('data', (chunk: Buffer) => {
      if (this.#closed) return;
      let flowing = true;
      for (const frame of dataFrames(type, chunk)) flowing = this.socket.write(frame) && flowing;
      if (!flowing) {
        stream.pause();
        this.socket.once('drain', () => stream.resume());
      }
    });
  }

  #protocolError(message: string): void {
    this.events.onWarning(`holder protocol: ${message}; closing the connection`);
    if (!this.#closed) this.socket.end(encodeFrame(Frame.ERROR, message));
    this.#detach();
  }

  /** The holder went: the process keeps running, its output is read and dropped. */
  #detach(): void {
    this.#closed = true;
    this.proc.stdout.resume();
    this.proc.stderr.resume();
  }
}

function ended(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
