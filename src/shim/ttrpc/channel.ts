/**
 * One ttrpc connection's byte level, shared by server and client: frames in through a FrameDecoder,
 * frames out as single socket writes, and one close that says why. Malformed input (a length over
 * 4 MiB, an unknown type, a stream that ends inside a frame) closes the connection with a
 * TTRPC_PROTOCOL error naming what was wrong.
 */
import type { Socket } from 'node:net';
import { TtrpcError } from './errors.js';
import { encodeFrame, FrameDecoder, type Frame, type FrameType } from './frame.js';

export class FrameChannel {
  readonly #socket: Socket;
  readonly #decoder = new FrameDecoder();
  readonly #onClose: (reason: Error | null) => void;
  #closeReason: Error | null | undefined = undefined;

  /**
   * `onFrame` gets every frame in order; if it throws, the connection closes with that error (so a
   * peer that breaks the protocol above the framing is dealt with in one place). `onClose` is
   * called once: with null when the peer closed between frames or close() was called without a reason.
   */
  constructor(socket: Socket, onFrame: (frame: Frame) => void, onClose: (reason: Error | null) => void) {
    this.#socket = socket;
    this.#onClose = onClose;
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      try {
        this.#decoder.feed(chunk, (frame) => {
          if (!this.closed) onFrame(frame);
        });
      } catch (err) {
        this.close(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.on('end', () => {
      try {
        this.#decoder.end();
        this.close();
      } catch (err) {
        this.close(err as Error);
      }
    });
    socket.on('error', (err) => this.close(new TtrpcError('TTRPC_CLOSED', `ttrpc connection failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closeReason !== undefined;
  }

  /** Why the channel closed: undefined while open, null for a clean close. */
  get closeReason(): Error | null | undefined {
    return this.#closeReason;
  }

  /** Sends one frame; throws TTRPC_CLOSED once closed, TTRPC_INVALID_ARGUMENT for data over 4 MiB. */
  send(streamId: number, type: FrameType, data: Uint8Array, flags = 0): void {
    if (this.closed) throw new TtrpcError('TTRPC_CLOSED', 'ttrpc connection is closed', { cause: this.#closeReason ?? undefined });
    this.#socket.write(encodeFrame({ streamId, type, flags, data }));
  }

  close(reason: Error | null = null): void {
    if (this.closed) return;
    this.#closeReason = reason;
    this.#socket.destroy();
    this.#onClose(reason);
  }
}
