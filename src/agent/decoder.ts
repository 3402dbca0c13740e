/**
 * Decoding side of the agent protocol v1 codec (protocol.ts has the frame layout and encoders):
 * an incremental frame decoder and the checks of each payload. Pure: no I/O, no timers.
 */
import { AgentError, describeValue, protocolError } from './errors.js';
import {
  FrameType,
  frameTypeName,
  HEADER_SIZE,
  isFrameType,
  MAX_FRAME_LENGTH,
  MIN_FRAME_LENGTH,
  type AgentResponse,
  type ExitStatus,
  type Frame,
  type JsonObject,
} from './protocol.js';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Incremental decoder. Accepts the byte stream in chunks of any size and returns whole frames.
 * Header fields are checked as soon as their bytes arrive, so a bad length is reported without
 * waiting for (or buffering) the bytes it announces. It holds at most one frame's bytes.
 * After the first malformed frame every later push throws: the stream cannot be trusted.
 */
export class FrameDecoder {
  readonly #header = Buffer.alloc(HEADER_SIZE);
  #headerFilled = 0;
  #payload: Buffer | null = null;
  #payloadFilled = 0;
  #failure: AgentError | null = null;

  /** Bytes held for the frame in progress (header and payload). */
  get bufferedBytes(): number {
    return this.#headerFilled + this.#payloadFilled;
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
   * Like push, but hands each frame to `onFrame` as soon as it is complete, so frames that precede
   * a malformed one in the same chunk are not lost when this throws.
   */
  feed(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.#failure) throw protocolError(`decoder stopped after an earlier error: ${this.#failure.message}`, this.#failure);
    try {
      this.#feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length), onFrame);
    } catch (err) {
      this.#failure = err instanceof AgentError ? err : protocolError(`decoder failed: ${String(err)}`, err);
      this.#payload = null;
      this.#payloadFilled = 0;
      this.#headerFilled = 0;
      throw err;
    }
  }

  #feed(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#headerFilled < HEADER_SIZE) {
        const take = Math.min(HEADER_SIZE - this.#headerFilled, chunk.length - offset);
        chunk.copy(this.#header, this.#headerFilled, offset, offset + take);
        this.#headerFilled += take;
        offset += take;
        checkHeader(this.#header, this.#headerFilled);
        if (this.#headerFilled < HEADER_SIZE) return;
        const payloadSize = this.#header.readUInt32BE(0) - MIN_FRAME_LENGTH;
        if (payloadSize === 0) {
          this.#emit(Buffer.alloc(0), onFrame);
          continue;
        }
        if (chunk.length - offset >= payloadSize) {
          // Whole payload in this chunk: no copy.
          const payload = chunk.subarray(offset, offset + payloadSize);
          offset += payloadSize;
          this.#emit(payload, onFrame);
          continue;
        }
        this.#payload = Buffer.allocUnsafe(payloadSize);
        this.#payloadFilled = 0;
      }
      const payload = this.#payload!;
      const take = Math.min(payload.length - this.#payloadFilled, chunk.length - offset);
      chunk.copy(payload, this.#payloadFilled, offset, offset + take);
      this.#payloadFilled += take;
      offset += take;
      if (this.#payloadFilled === payload.length) this.#emit(payload, onFrame);
    }
  }

  #emit(payload: Buffer, onFrame: (frame: Frame) => void): void {
    const type = this.#header.readUInt8(4);
    const id = this.#header.readUInt32BE(8);
    // Reset before decoding the payload so the decoder is consistent whatever happens next.
    this.#headerFilled = 0;
    this.#payload = null;
    this.#payloadFilled = 0;
    onFrame(decodePayload(type, id, payload));
  }
}

/** Validates the header fields whose bytes are present (the first `filled` bytes). */
function checkHeader(header: Buffer, filled: number): void {
  if (filled >= 4) {
    const length = header.readUInt32BE(0);
    if (length < MIN_FRAME_LENGTH) throw protocolError(`frame length ${length} is below the minimum ${MIN_FRAME_LENGTH}`);
    if (length > MAX_FRAME_LENGTH) throw protocolError(`frame length ${length} exceeds the maximum ${MAX_FRAME_LENGTH}`);
  }
  if (filled >= 5) {
    const type = header.readUInt8(4);
    if (!isFrameType(type)) throw protocolError(`frame type ${type} is unknown (v1 types are 1..7)`);
  }
  if (filled >= 6) {
    const flags = header.readUInt8(5);
    if (flags !== 0) throw protocolError(`${frameTypeName(header.readUInt8(4))} frame flags are 0x${hex(flags, 2)}, must be 0 in v1`);
  }
  if (filled >= 8) {
    const reserved = header.readUInt16BE(6);
    if (reserved !== 0) throw protocolError(`${frameTypeName(header.readUInt8(4))} frame reserved field is 0x${hex(reserved, 4)}, must be 0 in v1`);
  }
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, '0');
}

function decodePayload(type: number, id: number, payload: Buffer): Frame {
  const where = `${frameTypeName(type)} frame (id ${id})`;
  switch (type) {
    case FrameType.REQUEST: {
      const { op, ...args } = parseJsonObject(payload, where);
      if (typeof op !== 'string') throw protocolError(`${where}: "op" must be a string, got ${describeValue(op)}`);
      return { type, id, op, args };
    }
    case FrameType.RESPONSE:
      return { type, id, response: parseResponse(parseJsonObject(payload, where), where) };
    case FrameType.STDIN:
    case FrameType.STDOUT:
    case FrameType.STDERR:
      return { type, id, data: payload };
    case FrameType.EXIT:
      return { type, id, status: parseExitStatus(parseJsonObject(payload, where), where) };
    case FrameType.STDIN_ACK:
      if (payload.length !== 4) throw protocolError(`${where}: payload is ${payload.length} bytes, must be exactly 4`);
      return { type, id, count: payload.readUInt32BE(0) };
    default:
      // checkHeader already rejected unknown types; kept so a future edit cannot fall through.
      throw protocolError(`frame type ${type} is unknown`);
  }
}

function parseJsonObject(payload: Buffer, where: string): JsonObject {
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch (err) {
    throw protocolError(`${where}: payload is not valid UTF-8`, err);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw protocolError(`${where}: payload is not valid JSON (${describeValue(text, 40)})`, err);
  }
  if (!isJsonObject(value)) throw protocolError(`${where}: payload must be a JSON object, got ${describeValue(value, 40)}`);
  return value;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseResponse(body: JsonObject, where: string): AgentResponse {
  if (body.ok === true) {
    if (!isJsonObject(body.result)) throw protocolError(`${where}: "result" must be a JSON object, got ${describeValue(body.result)}`);
    return { ok: true, result: body.result };
  }
  if (body.ok === false) {
    const error = body.error;
    if (!isJsonObject(error)) throw protocolError(`${where}: "error" must be a JSON object, got ${describeValue(error)}`);
    if (typeof error.code !== 'string' || error.code === '') {
      throw protocolError(`${where}: "error.code" must be a non-empty string, got ${describeValue(error.code)}`);
    }
    if (typeof error.message !== 'string') throw protocolError(`${where}: "error.message" must be a string, got ${describeValue(error.message)}`);
    return { ok: false, error: { code: error.code, message: error.message } };
  }
  throw protocolError(`${where}: "ok" must be true or false, got ${describeValue(body.ok)}`);
}

/** Validates an exit status object (EXIT payload, `wait` result); `where` prefixes the error. */
export function parseExitStatus(body: JsonObject, where: string): ExitStatus {
  const { exitCode, signal } = body;
  if (exitCode !== null && !(Number.isInteger(exitCode) && (exitCode as number) >= 0 && (exitCode as number) <= 255)) {
    throw protocolError(`${where}: "exitCode" must be null or an integer 0..255, got ${describeValue(exitCode)}`);
  }
  if (signal !== null && typeof signal !== 'string') throw protocolError(`${where}: "signal" must be null or a string, got ${describeValue(signal)}`);
  const status: ExitStatus = { exitCode: exitCode as number | null, signal };
  if (body.error !== undefined) {
    if (typeof body.error !== 'string') throw protocolError(`${where}: "error" must be a string, got ${describeValue(body.error)}`);
    status.error = body.error;
  }
  return status;
}
