/**
 * Host-side codec of the agent protocol v1 (docs/agent-protocol.md): frame layout, types and the
 * encoders; decoder.ts decodes. Pure: no I/O, no timers.
 *
 * Frame: u32 length (= 8 + payload), u8 type, u8 flags (0), u16 reserved (0), u32 id, payload.
 * All integers big-endian.
 */
import { AgentError, describeValue } from './errors.js';

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

export function isFrameType(type: number): boolean {
  return TYPE_NAMES.has(type);
}

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
  /** A forward only (docs/agent-protocol.md, "Port forwarding"): why its connection failed. */
  error?: string;
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
  if (!isFrameType(type)) throw invalidArgument(`frame type ${describeValue(type)} is not a v1 frame type`);
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
  const body: JsonObject = { exitCode: status.exitCode, signal: status.signal };
  if (status.error !== undefined) body.error = status.error;
  return encodeJson(FrameType.EXIT, id, body);
}

export function encodeStdinAck(id: number, count: number): Buffer {
  if (!Number.isInteger(count) || count < 0 || count > UINT32_MAX) throw invalidArgument(`STDIN_ACK count ${describeValue(count)} is not a u32`);
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(count, 0);
  return encodeFrame(FrameType.STDIN_ACK, id, payload);
}
