// Errors of the public API: every one is a VcError with a stable string `code` that callers can
// switch on. GuestError (kernel, initrd, images) and AgentError (the guest channel) are VcErrors
// too; their codes are listed with their classes (src/guest/errors.ts, src/agent/errors.ts) and
// all of them in README.md "Errors".

/** Codes of the API layer: pods, containers, state, hypervisors, host cgroups, pod networking. */
export type ApiErrorCode =
  | 'INVALID_CONFIG'
  | 'POD_NOT_FOUND'
  | 'POD_EXISTS'
  | 'ILLEGAL_TRANSITION'
  | 'POD_RUNNING'
  | 'POD_NOT_RUNNING'
  | 'LOCK_TIMEOUT'
  | 'STATE_CORRUPT'
  | 'STATE_UNSUPPORTED'
  | 'STATE_UNSAFE'
  | 'HYPERVISOR_UNAVAILABLE'
  | 'HYPERVISOR_FAILED'
  | 'AGENT_UNREACHABLE'
  | 'CONTAINER_NOT_FOUND'
  | 'CONTAINER_EXISTS'
  | 'CONTAINER_RUNNING'
  | 'CGROUP_FAILED'
  | 'NETWORK_UNAVAILABLE'
  | 'NETWORK_FAILED'
  | 'CNI_PLUGIN_FAILED'
  | 'UNSUPPORTED'
  | 'TEMPLATE_NOT_FOUND'
  | 'TEMPLATE_EXISTS'
  | 'TEMPLATE_IN_USE'
  | 'TEMPLATE_STALE'
  | 'TEMPLATE_CORRUPT'
  | 'ABORTED';

/** Codes of GuestError: the guest's kernel, initrd and images, built on the host. */
export type GuestErrorCode =
  | 'INVALID_OPTION'
  | 'KERNEL_UNAVAILABLE'
  | 'KERNEL_PACKAGE_INVALID'
  | 'BUSYBOX_UNAVAILABLE'
  | 'ELF_INVALID'
  | 'MODULE_NOT_FOUND'
  | 'MODULE_CYCLE'
  | 'MODULE_MISMATCH'
  | 'MODULE_UNSUPPORTED'
  | 'CPIO_INVALID'
  | 'CACHE_WRITE_FAILED'
  | 'CACHE_UNSAFE'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_INVALID'
  | 'IMAGE_DIGEST_MISMATCH'
  | 'IMAGE_UNSAFE'
  | 'IMAGE_UNSUPPORTED'
  | 'IMAGE_BUILD_FAILED';

/** Codes of AgentError: `AGENT_*` from the host side, the rest answered by the guest agent as is. */
export type AgentErrorCode =
  | 'AGENT_PROTOCOL'
  | 'AGENT_CLOSED'
  | 'AGENT_TIMEOUT'
  | 'AGENT_ABORTED'
  | 'AGENT_BUSY'
  | 'AGENT_CONNECT_FAILED'
  | 'AGENT_VERSION_MISMATCH'
  | 'AGENT_INVALID_ARGUMENT'
  | 'BAD_REQUEST'
  | 'UNKNOWN_OP'
  | 'VERSION_MISMATCH'
  | 'EXEC_FAILED'
  | 'NOT_FOUND'
  | 'ILLEGAL_STATE'
  | 'CONTAINER_FAILED'
  | 'CONTAINER_EXISTS'
  | 'CONTAINER_RUNNING'
  | 'IMAGE_NOT_FOUND'
  | 'FORWARD_FAILED'
  | 'RESTORE_PENDING'
  | 'NOT_RESTORED'
  | 'INTERNAL';

export type VcErrorCode = ApiErrorCode | GuestErrorCode | AgentErrorCode;

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

/** Throws VcError ABORTED when `signal` has fired, so long operations stop between steps. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}
