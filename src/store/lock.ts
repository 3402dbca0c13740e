// Per-pod locks: flock(2) on a file, so the kernel drops a lock whose holder died.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../native.js';
import { VcError, abortError } from '../errors.js';

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Takes an exclusive lock on `path` (created if missing), waiting up to timeoutMs for it. The lock
 * is on the file that `path` names when it is taken: a holder may delete the file (a pod's
 * directory goes with its lock) and another caller make a new one, so a lock won on a file that
 * is no longer at `path` is dropped and `path` tried again.
 */
export async function acquireLock(path: string, what: string, options: LockOptions = {}): Promise<Lock> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const handle: FileHandle = await open(path, 'a', 0o600);
    try {
      // Polling keeps the event loop free; the contended case is rare and short.
      for (let delay = 2; !native().flock(handle.fd, true); delay = Math.min(delay * 2, 50)) {
        if (options.signal?.aborted) throw abortError(options.signal, `waiting for the lock of ${what}`);
        if (Date.now() >= deadline) {
          throw new VcError('LOCK_TIMEOUT', `${what} is locked by another operation (waited ${timeoutMs} ms for ${path})`);
        }
        await sleep(delay);
      }
    } catch (err) {
      await handle.close();
      throw err;
    }
    if (await stillAt(handle, path)) return lockOn(handle);
    await handle.close();
  }
}

/** Takes the lock only if nobody holds it: null when it is held. */
export async function tryLock(path: string): Promise<Lock | null> {
  const handle = await open(path, 'a', 0o600);
  if (native().flock(handle.fd, true) && (await stillAt(handle, path))) return lockOn(handle);
  await handle.close();
  return null;
}

async function stillAt(handle: FileHandle, path: string): Promise<boolean> {
  const [held, named] = await Promise.all([handle.stat(), stat(path).catch(() => undefined)]);
  return named !== undefined && named.ino === held.ino && named.dev === held.dev;
}

function lockOn(handle: FileHandle): Lock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await handle.close(); // closing the last fd drops the flock
    },
  };
}

export async function withLock<T>(path: string, what: string, options: LockOptions, body: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, what, options);
  try {
    return await body();
  } finally {
    await lock.release();
  }
}
