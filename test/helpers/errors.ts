// Assertions on errors that carry a stable `code` (VcError, GuestError, AgentError).
import * as assert from 'uvu/assert';
import { join } from 'node:path';

/** Awaits `promise` and returns its error's code, or undefined when it resolved. */
export async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(() => undefined, (err: { code?: string }) => err.code);
}

/** Asserts that `promise` rejects with an instance of `type` with `code` (and a message matching). */
export async function expectCode<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
  code: string,
  message?: string | RegExp,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, type, String(err));
    assert.is((err as { code?: string }).code, code, (err as Error).message);
    if (message) assert.match((err as Error).message, message);
    return err as E;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

/** Runs fn with PATH pointing at an empty place, so any apt-get/apt-cache/dpkg-deb call fails. */
export async function withoutTools<T>(scratch: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = join(scratch, 'no-bin');
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}
