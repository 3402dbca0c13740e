// Errors of the public API: every one has a stable string `code` that callers can switch on.

export type VcErrorCode =
  | 'INVALID_CONFIG'
  | 'POD_NOT_FOUND'
  | 'POD_EXISTS'
  | 'ILLEGAL_TRANSITION'
  | 'POD_RUNNING'
  | 'POD_NOT_RUNNING'
  | 'LOCK_TIMEOUT'
  | 'STATE_CORRUPT'
  | 'HYPERVISOR_UNAVAILABLE'
  | 'HYPERVISOR_FAILED'
  | 'AGENT_UNREACHABLE'
  | 'CONTAINER_NOT_FOUND'
  | 'CONTAINER_EXISTS'
  | 'CONTAINER_RUNNING'
  | 'IMAGE_INVALID'
  | 'CGROUP_FAILED'
  | 'ABORTED';

export class VcError extends Error {
  readonly code: VcErrorCode;
  constructor(code: VcErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'VcError';
  }
}

export function abortError(signal: AbortSignal | undefined, what: string): VcError {
  return new VcError('ABORTED', `${what} was aborted`, { cause: signal?.reason });
}

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}
