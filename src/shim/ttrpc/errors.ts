/**
 * The two kinds of failure on a ttrpc connection. An RpcError is a call's answer: a gRPC status that
 * a handler throws for the server to send, or that the client receives; the connection stays up.
 * A TtrpcError is about the connection itself (bad bytes, closed, timed out): a protocol error
 * always closes the connection, since after a bad frame the byte stream cannot be trusted.
 */

/** gRPC status codes, which ttrpc answers in Response.status.code. */
export const StatusCode = {
  OK: 0,
  Cancelled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;
export type StatusCode = (typeof StatusCode)[keyof typeof StatusCode];

const statusNames = new Map<number, string>(Object.entries(StatusCode).map(([name, code]) => [code, name]));

/** "NotFound" for 5; codes outside gRPC's list stay visible as "code 99". */
export function statusName(code: number): string {
  return statusNames.get(code) ?? `code ${code}`;
}

export class RpcError extends Error {
  /** The gRPC status code (never OK). */
  readonly status: number;

  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RpcError';
    this.status = status;
  }

  /** "NotFound: container c1 not found", for logs. */
  override toString(): string {
    return `${statusName(this.status)}: ${this.message}`;
  }
}

export type TtrpcErrorCode =
  /** The peer sent bytes that break the framing or the Request/Response encoding. */
  | 'TTRPC_PROTOCOL'
  /** The connection closed (or was closed) before the answer arrived. */
  | 'TTRPC_CLOSED'
  /** The caller's deadline for a call passed. */
  | 'TTRPC_TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'TTRPC_ABORTED'
  /** The socket could not be connected. */
  | 'TTRPC_CONNECT_FAILED'
  /** A server cannot listen on the socket: a live server does already. */
  | 'TTRPC_ADDRESS_IN_USE'
  /** What the caller asked cannot be sent: a message over 4 MiB, an address that is not a Unix socket. */
  | 'TTRPC_INVALID_ARGUMENT';

export class TtrpcError extends Error {
  readonly code: TtrpcErrorCode;

  constructor(code: TtrpcErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TtrpcError';
    this.code = code;
  }
}

export function protocolError(message: string, cause?: unknown): TtrpcError {
  return new TtrpcError('TTRPC_PROTOCOL', message, cause === undefined ? undefined : { cause });
}
