/**
 * Host-side codec of the agent protocol v1 (docs/agent-protocol.md). Pure: no I/O, no timers.
 *
 * Frame: u32 length (= 8 + payload), u8 type, u8 flags (0), u16 reserved (0), u32 id, payload.
 * All integers big-endian.
 */
import { AgentError, describeValue, protocolError } from './errors.js';

export const PROTOCOL_VERSION = 1;

/** Frame types; a plain object rather than a TS enum so it survives isolated compilation. */
export const FrameType = {
  REQUEST: 1,
  RESPONSE: 2,
  STDIN: 3,
  STDOUT: 4,
  STDERR: 5,
  EXIT: 6,
  STDIN_ACK: 7,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const TYPE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(FrameType).map(([name, value]) => [value, name]));

export function frameTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `type ${type}`;
}

/** Bytes before the payload: the length field plus the 8 bytes it counts. */
export const HEADER_SIZE = 12;
export const MIN_FRAME_LENGTH = 8;
export const MAX_PAYLOAD_SIZE = 1024 * 1024;
export const MAX_FRAME_LENGTH = MIN_FRAME_LENGTH + MAX_PAYLOAD_SIZE;
/** Unacknowledged STDIN bytes the host may keep in flight per process. */
export const STDIN_WINDOW = 256 * 1024;
const UINT32_MAX = 0xffff_ffff;

export type JsonObject = { [key: string]: unknown };

export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
}

export type AgentResponse =
  | { ok: true; result: JsonObject }
  | { ok: false; error: { code: string; message: string } };

export interface RequestFrame {
  type: typeof FrameType.REQUEST;
  id: number;
  op: string;
  /** The request object without `op`. */
  args: JsonObject;
}
export interface ResponseFrame {
  type: typeof FrameType.RESPONSE;
  id: number;
  response: AgentResponse;
}
export interface DataFrame {
  type: typeof FrameType.STDIN | typeof FrameType.STDOUT | typeof FrameType.STDERR;
  id: number;
  /** Empty = end of that stream. May share memory with the chunk given to the decoder. */
  data: Buffer;
}
export interface ExitFrame {
  type: typeof FrameType.EXIT;
  id: number;
  status: ExitStatus;
}
export interface StdinAckFrame {
  type: typeof FrameType.STDIN_ACK;
  id: number;
  count: number;
}
export type Frame = RequestFrame | ResponseFrame | DataFrame | ExitFrame | StdinAckFrame;

// ---------------------------------------------------------------------------------------------
// Encoding

function invalidArgument(message: string): AgentError {
  return new AgentError('AGENT_INVALID_ARGUMENT', message);
}

export function encodeFrame(type: FrameType, id: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (!TYPE_NAMES.has(type)) throw invalidArgument(`frame type ${describeValue(type)} is not a v1 frame type`);
  if (!Number.isInteger(id) || id < 0 || id > UINT32_MAX) throw invalidArgument(`frame id ${describeValue(id)} is not a u32`);
  if (payload.length > MAX_PAYLOAD_SIZE) {
    throw invalidArgument(`${frameTypeName(type)} payload of ${payload.length} bytes exceeds the maximum ${MAX_PAYLOAD_SIZE}`);
  }
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  frame.writeUInt32BE(MIN_FRAME_LENGTH + payload.length, 0);
  frame.writeUInt8(type, 4);
  frame.writeUInt8(0, 5);
  frame.writeUInt16BE(0, 6);
  frame.writeUInt32BE(id, 8);
  frame.set(payload, HEADER_SIZE);
  return frame;
}

function encodeJson(type: FrameType, id: number, value: JsonObject): Buffer {
  return encodeFrame(type, id, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** `args` must not contain `op`; undefined-valued arguments are left out (JSON semantics). */
export function encodeRequest(id: number, op: string, args: JsonObject = {}): Buffer {
  if (typeof op !== 'string' || op === '') throw invalidArgument(`request op ${describeValue(op)} must be a non-empty string`);
  if (Object.hasOwn(args, 'op')) throw invalidArgument(`request arguments must not contain "op" (op is ${JSON.stringify(op)})`);
  return encodeJson(FrameType.REQUEST, id, { op, ...args });
}

export function encodeResponse(id: number, response: AgentResponse): Buffer {
  return encodeJson(FrameType.RESPONSE, id, response);
}

export function encodeExit(id: number, status: ExitStatus): Buffer {
  return encodeJson(FrameType.EXIT, id, { exitCode: status.exitCode, signal: status.signal });
}

export function encodeStdinAck(id: number, count: number): Buffer {
  if (!Number.isInteger(count) || count < 0 || count > UINT32_MAX) throw invalidArgument(`STDIN_ACK count ${describeValue(count)} is not a u32`);
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(count, 0);
  return encodeFrame(FrameType.STDIN_ACK, id, payload);
}

// ---------------------------------------------------------------------------------------------
// Decoding

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
    if (!TYPE_NAMES.has(type)) throw protocolError(`frame type ${type} is unknown (v1 types are 1..7)`);
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
  return { exitCode: exitCode as number | null, signal };
}
