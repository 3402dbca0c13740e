/**
 * The framing on `<root>/daemon.sock`, both directions: `u8 type | u32 BE length | payload`, the
 * payload at most 1 MiB. Types 1-10 are the holder protocol (contract of issue 16); 100/101 are the
 * CLI's request and reply (one JSON object each). A connection's first frame says which it is.
 */
export const Frame = {
  HELLO: 1,
  ACK: 2,
  STDIN: 3,
  STDIN_EOF: 4,
  STDOUT: 5,
  STDERR: 6,
  SIGNAL: 7,
  RESIZE: 8,
  ERROR: 9,
  EXIT: 10,
  REQUEST: 100,
  REPLY: 101,
} as const;
export type FrameType = (typeof Frame)[keyof typeof Frame];

export const MAX_PAYLOAD = 1024 * 1024;
const HEADER = 5;

export class FrameError extends Error {}

export function encodeFrame(type: number, payload: Uint8Array | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (body.length > MAX_PAYLOAD) throw new FrameError(`frame type ${type}: payload of ${body.length} bytes is over the 1 MiB limit`);
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}

/** Output bytes as frames of at most 1 MiB each. */
export function dataFrames(type: number, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_PAYLOAD) out.push(encodeFrame(type, data.subarray(at, at + MAX_PAYLOAD)));
  return out;
}

export interface DecodedFrame {
  type: number;
  payload: Buffer;
}

/** Collects bytes and hands out whole frames; a length over the limit is a protocol error. */
export class FrameReader {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): DecodedFrame[] {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    const frames: DecodedFrame[] = [];
    while (this.#buffer.length >= HEADER) {
      const length = this.#buffer.readUInt32BE(1);
      if (length > MAX_PAYLOAD) throw new FrameError(`frame type ${this.#buffer[0]}: length ${length} is over the 1 MiB limit`);
      if (this.#buffer.length < HEADER + length) break;
      frames.push({ type: this.#buffer[0]!, payload: Buffer.from(this.#buffer.subarray(HEADER, HEADER + length)) });
      this.#buffer = this.#buffer.subarray(HEADER + length);
    }
    return frames;
  }

  /** Bytes of a frame begun but not finished (a peer that closed mid-frame). */
  get pending(): number {
    return this.#buffer.length;
  }
}

/** EXIT's payload: kind 0 exited with `value`, 1 killed by signal `value`. */
export function exitPayload(kind: 'exited' | 'signalled', value: number): Buffer {
  return Buffer.from([kind === 'exited' ? 0 : 1, value & 0xff]);
}
