import { VcError, type AgentErrorCode } from '../errors.js';

/**
 * Every failure of the agent layer is an AgentError (a VcError) with a stable string `code`, so callers can
 * branch on the code instead of parsing messages.
 *
 * Host-side codes carry an `AGENT_` prefix:
 * - `AGENT_PROTOCOL`         the peer sent bytes that break docs/agent-protocol.md (connection is closed)
 * - `AGENT_CLOSED`           the connection went away (or was closed) before the answer arrived
 * - `AGENT_TIMEOUT`          a deadline passed
 * - `AGENT_ABORTED`          the caller's AbortSignal fired (`cause` is the signal's reason)
 * - `AGENT_BUSY`             no free request id, a process is already attached to this client, or
 *                            every agent port stayed leased by other clients until the deadline
 * - `AGENT_CONNECT_FAILED`   the socket could not be opened or the hybrid-vsock handshake was refused
 * - `AGENT_VERSION_MISMATCH` the agent answered `hello` with a version this client does not speak
 * - `AGENT_INVALID_ARGUMENT` the caller passed something that cannot be sent (names the field)
 *
 * Error responses from the guest keep the guest's own code unchanged (`EXEC_FAILED`, `NOT_FOUND`,
 * `BAD_REQUEST`, `UNKNOWN_OP`, `VERSION_MISMATCH`, `INTERNAL`) and the guest's message; `op` then
 * names the request that failed.
 */
export class AgentError extends VcError {
  declare readonly code: AgentErrorCode;
  /** The request op, when the error is an answer to (or the fate of) one request. */
  readonly op: string | undefined;

  constructor(code: string, message: string, options?: { cause?: unknown; op?: string }) {
    // The guest's codes come off the wire unchanged; AgentErrorCode lists those native/agent sends.
    super(code as AgentErrorCode, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.op = options?.op;
  }
}

export function protocolError(message: string, cause?: unknown): AgentError {
  return new AgentError('AGENT_PROTOCOL', message, { cause });
}

/** Renders an untrusted value for an error message: bounded length, control characters escaped. */
export function describeValue(value: unknown, max = 80): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (value === undefined) text = 'undefined';
  else if (typeof value === 'bigint') text = `${value}n`;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
