/** Timeout + caller AbortSignal folded into one AbortSignal whose reason is always an AgentError. */
import { AgentError } from './errors.js';

export interface CancelOptions {
  signal?: AbortSignal | undefined;
  /** 0 or Infinity: no deadline. */
  timeoutMs?: number | undefined;
}

/** Turns an abort reason into the error a caller should see. */
export function abortReason(what: string, reason: unknown): AgentError {
  if (reason instanceof AgentError) return reason;
  return new AgentError('AGENT_ABORTED', `${what} was aborted`, { cause: reason });
}

export function timeoutError(what: string, timeoutMs: number): AgentError {
  return new AgentError('AGENT_TIMEOUT', `${what} timed out after ${timeoutMs} ms`);
}

export function hasDeadline(timeoutMs: number | undefined): timeoutMs is number {
  return timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs);
}

export interface Deadline {
  readonly signal: AbortSignal;
  dispose(): void;
}

/** Remember to dispose(): it clears the timer and the listener on the caller's signal. */
export function deadline(what: string, options: CancelOptions): Deadline {
  const controller = new AbortController();
  const parent = options.signal;
  const onParentAbort = (): void => controller.abort(abortReason(what, parent?.reason));
  let timer: NodeJS.Timeout | undefined;
  if (parent?.aborted) onParentAbort();
  else {
    parent?.addEventListener('abort', onParentAbort, { once: true });
    if (hasDeadline(options.timeoutMs)) {
      const ms = options.timeoutMs;
      timer = setTimeout(() => controller.abort(timeoutError(what, ms)), ms);
    }
  }
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

/**
 * Settles with `promise`, or rejects with the abort reason as soon as `signal` fires. A value that
 * arrives after the abort is passed to `onLate` (e.g. to destroy a socket nobody will use).
 */
export function raceAbort<T>(what: string, promise: Promise<T>, signal: AbortSignal, onLate: (value: T) => void): Promise<T> {
  if (signal.aborted) {
    promise.then(onLate, () => {});
    return Promise.reject(abortReason(what, signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(abortReason(what, signal.reason));
      promise.then(onLate, () => {});
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return; // onAbort already handed the value to onLate
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
