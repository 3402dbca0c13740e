/**
 * The one place that loads the shim's protobuf schemas (proto/ at the package root, our own files)
 * and hands out typed codecs for their messages. The TypeScript shapes of the messages live beside
 * it (task.ts, events.ts, and the small common ones here); each is what `decode` returns: every
 * field present, proto3 defaults filled in ('' / 0 / false / [] / {}), absent sub-messages `null`,
 * 64-bit integers as numbers, enums as numbers, bytes as Buffers.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../../native.js';
import { loadProtoFiles } from './load.js';

/** Where the shipped .proto files are (package.json "files" has "proto"). */
export const protoDir = join(packageRoot, 'proto');

let root: protobuf.Root | null = null;

/** All our schemas in one Root, parsed on first use. */
export function protoRoot(): protobuf.Root {
  if (root === null) {
    const files = readdirSync(protoDir).filter((name) => name.endsWith('.proto')).sort();
    root = loadProtoFiles(files, [protoDir]);
  }
  return root;
}

/** A message being encoded: any field may be left out (it is then its default on the wire). */
export type MessageInit<T> = T extends Buffer
  ? Uint8Array
  : T extends readonly (infer U)[]
    ? MessageInit<U>[]
    : T extends object
      ? { [K in keyof T]?: MessageInit<T[K]> | null }
      : T;

export class ProtoDecodeError extends Error {
  readonly code = 'PROTO_DECODE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtoDecodeError';
  }
}

export interface MessageCodec<T> {
  /** The full message name, e.g. "containerd.events.TaskExit" (also the type_url containerd uses in an Any). */
  readonly typeName: string;
  encode(message: MessageInit<T>): Buffer;
  /** Throws ProtoDecodeError on bytes that are not this message's encoding. */
  decode(bytes: Uint8Array): T;
}

const toObjectOptions: protobuf.IConversionOptions = {
  defaults: true,
  longs: Number,
  enums: Number,
  arrays: true,
  objects: true,
};

/** A codec for the message `typeName`; the type is looked up on first use. */
export function messageCodec<T>(typeName: string): MessageCodec<T> {
  let type: protobuf.Type | null = null;
  const resolve = (): protobuf.Type => (type ??= protoRoot().lookupType(typeName));
  return {
    typeName,
    encode(message) {
      const t = resolve();
      const writer = t.encode(t.fromObject(message as Record<string, unknown>));
      const bytes = writer.finish();
      return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    },
    decode(bytes) {
      const t = resolve();
      try {
        const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
        return t.toObject(t.decode(buffer), toObjectOptions) as T;
      } catch (err) {
        throw new ProtoDecodeError(`cannot decode ${typeName} (${bytes.length} bytes): ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

// --- google.protobuf, google.rpc, ttrpc ------------------------------------------------------------

export interface Any {
  typeUrl: string;
  value: Buffer;
}

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export type Empty = Record<string, never>;

export interface RpcStatus {
  code: number;
  message: string;
  details: Any[];
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface TtrpcRequest {
  service: string;
  method: string;
  payload: Buffer;
  timeoutNano: number;
  metadata: KeyValue[];
}

export interface TtrpcResponse {
  status: RpcStatus | null;
  payload: Buffer;
}

export const common = {
  Any: messageCodec<Any>('google.protobuf.Any'),
  Timestamp: messageCodec<Timestamp>('google.protobuf.Timestamp'),
  Empty: messageCodec<Empty>('google.protobuf.Empty'),
  Status: messageCodec<RpcStatus>('google.rpc.Status'),
  Request: messageCodec<TtrpcRequest>('ttrpc.Request'),
  Response: messageCodec<TtrpcResponse>('ttrpc.Response'),
};

/** A Date (millisecond precision) as a Timestamp. */
export function timestampFromDate(date: Date): Timestamp {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1e6 };
}

/** A Timestamp as a Date (sub-millisecond part dropped). */
export function dateFromTimestamp(ts: Timestamp): Date {
  return new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1e6));
}

/** Packs a message into an Any the way containerd does: type_url is the bare full message name. */
export function packAny<T>(codec: MessageCodec<T>, message: MessageInit<T>): Any {
  return { typeUrl: codec.typeName, value: codec.encode(message) };
}
