/**
 * ttrpc framing (containerd/ttrpc PROTOCOL.md): every message is a 10-byte header — data length
 * (u32 BE, at most 4 MiB, header not counted), stream id (u32 BE), type (u8), flags (u8) — and
 * then the data. Client-initiated streams have odd ids. Pure: no I/O, no timers.
 */
import { protocolError, TtrpcError } from './errors.js';

export const HEADER_LENGTH = 10;
/** The largest data length a peer may announce; a longer frame is rejected before it is read. */
export const MAX_DATA_LENGTH = 4 << 20;

export const FrameType = {
  /** Opens a stream: a ttrpc.Request. */
  Request: 1,
  /** Ends a stream: a ttrpc.Response. */
  Response: 2,
  /** Stream data (ttrpc 1.2 streaming); our services are all unary, so we only ever receive it. */
  Data: 3,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Flag bits; their meaning depends on the frame type. Unary requests and all responses have none. */
export const FrameFlag = {
  /** Request or Data: the sender sends no more data on this stream. */
  RemoteClosed: 0x1,
  /** Request: the sender will send Data frames on this stream. */
  RemoteOpen: 0x2,
  /** Data: the frame carries no data. */
  NoData: 0x4,
} as const;

export interface Frame {
  streamId: number;
  type: FrameType;
  flags: number;
  data: Buffer;
}

export function isFrameType(value: number): value is FrameType {
  return value === FrameType.Request || value === FrameType.Response || value === FrameType.Data;
}

export function frameTypeName(type: number): string {
  switch (type) {
    case FrameType.Request: return 'request';
    case FrameType.Response: return 'response';
    case FrameType.Data: return 'data';
    default: return `unknown type ${type}`;
  }
}

/** Header and data in one buffer, so one socket write sends the whole frame. */
export function encodeFrame(frame: { streamId: number; type: FrameType; flags?: number; data?: Uint8Array }): Buffer {
  const data = frame.data ?? Buffer.alloc(0);
  if (data.length > MAX_DATA_LENGTH) {
    throw new TtrpcError('TTRPC_INVALID_ARGUMENT', `ttrpc message of ${data.length} bytes exceeds the ${MAX_DATA_LENGTH}-byte limit`);
  }
  if (!Number.isInteger(frame.streamId) || frame.streamId < 0 || frame.streamId > 0xffffffff) {
    throw new TtrpcError('TTRPC_INVALID_ARGUMENT', `ttrpc stream id ${frame.streamId} is not a u32`);
  }
  const out = Buffer.allocUnsafe(HEADER_LENGTH + data.length);
  out.writeUInt32BE(data.length, 0);
  out.writeUInt32BE(frame.streamId, 4);
  out.writeUInt8(frame.type, 8);
  out.writeUInt8(frame.flags ?? 0, 9);
  out.set(data, HEADER_LENGTH);
  return out;
}

/**
 * Incremental decoder: takes the byte stream in chunks of any size and yields whole frames. The
 * length and type are checked as soon as their bytes arrive, so an oversized or unknown frame is
 * reported without waiting for (or buffering) the bytes it announces; it holds at most one frame.
 * After the first malformed frame every later call throws: the stream cannot be trusted.
 */
export class FrameDecoder {
  readonly #header = Buffer.alloc(HEADER_LENGTH);
  #headerFilled = 0;
  #data: Buffer | null = null;
  #dataFilled = 0;
  #failure: TtrpcError | null = null;

  /** Bytes held of the frame in progress. */
  get bufferedBytes(): number {
    return this.#headerFilled + this.#dataFilled;
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    this.feed(chunk, (frame) => frames.push(frame));
    return frames;
  }

  /**
   * Like push, but hands each frame to `onFrame` as soon as it is complete, so the frames before a
   * malformed one in the same chunk are delivered before this throws.
   */
  feed(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.#failure) throw protocolError(`ttrpc decoder stopped after an earlier error: ${this.#failure.message}`, this.#failure);
    try {
      this.#feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), onFrame);
    } catch (err) {
      // An error thrown by onFrame is the caller's, not a malformed stream: pass it on unchanged.
      if (!(err instanceof TtrpcError && err.code === 'TTRPC_PROTOCOL')) throw err;
      this.#fail(err);
    }
  }

  /** The stream ended: throws if it ended inside a frame (a truncated frame). */
  end(): void {
    if (this.#failure) return;
    if (this.bufferedBytes === 0) return;
    const announced = this.#headerFilled === HEADER_LENGTH ? this.#header.readUInt32BE(0) : null;
    this.#fail(protocolError(announced === null
      ? `ttrpc stream ended inside a frame header (${this.#headerFilled} of ${HEADER_LENGTH} bytes)`
      : `ttrpc stream ended inside a frame (${this.#dataFilled} of ${announced} data bytes)`));
  }

  #fail(err: TtrpcError): never {
    this.#failure = err;
    this.#data = null;
    this.#dataFilled = 0;
    this.#headerFilled = 0;
    throw err;
  }

  #feed(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#headerFilled < HEADER_LENGTH) {
        const take = Math.min(HEADER_LENGTH - this.#headerFilled, chunk.length - offset);
        chunk.copy(this.#header, this.#headerFilled, offset, offset + take);
        this.#headerFilled += take;
        offset += take;
        checkHeader(this.#header, this.#headerFilled);
        if (this.#headerFilled < HEADER_LENGTH) return;
        const length = this.#header.readUInt32BE(0);
        if (chunk.length - offset >= length) {
          // The whole data is in this chunk: no copy.
          this.#emit(chunk.subarray(offset, offset + length), onFrame);
          offset += length;
          continue;
        }
        this.#data = Buffer.allocUnsafe(length);
        this.#dataFilled = 0;
      }
      const data = this.#data!;
      const take = Math.min(data.length - this.#dataFilled, chunk.length - offset);
      chunk.copy(data, this.#dataFilled, offset, offset + take);
      this.#dataFilled += take;
      offset += take;
      if (this.#dataFilled === data.length) this.#emit(data, onFrame);
    }
  }

  #emit(data: Buffer, onFrame: (frame: Frame) => void): void {
    const frame: Frame = {
      streamId: this.#header.readUInt32BE(4),
      type: this.#header.readUInt8(8) as FrameType,
      flags: this.#header.readUInt8(9),
      data,
    };
    // Reset first, so the decoder is ready for the next frame whatever onFrame does.
    this.#headerFilled = 0;
    this.#data = null;
    this.#dataFilled = 0;
    onFrame(frame);
  }
}

/** Checks the header fields whose bytes have arrived (the first `filled` bytes). */
function checkHeader(header: Buffer, filled: number): void {
  if (filled >= 4) {
    const length = header.readUInt32BE(0);
    if (length > MAX_DATA_LENGTH) throw protocolError(`ttrpc frame length ${length} exceeds the maximum ${MAX_DATA_LENGTH}`);
  }
  if (filled >= 9) {
    const type = header.readUInt8(8);
    if (!isFrameType(type)) throw protocolError(`ttrpc frame type ${type} is unknown (1 request, 2 response, 3 data)`);
  }
}
