// `vc-vmm --version`: what a template records, and what every start of a pod from a template is
// checked against (TEMPLATE_STALE). Spawning it took 0.3–1 s per start inside the nested harness's
// emulated L1, a good part of a restored start; the answer only changes when the binary does. So
// it is kept per path, with the binary's identity when it was asked: (dev, ino, size, mtime, ctime)
// in nanoseconds. Replacing the binary (a new inode) or rewriting it in place (a new ctime, even
// with its mtime put back) changes that identity, and the next check asks the new binary.
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { VcError } from '../../errors.js';

/** The identity of the file at `path` now; a missing one is HYPERVISOR_UNAVAILABLE naming it. */
export async function binaryIdentity(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    throw new VcError('HYPERVISOR_UNAVAILABLE', `vc-vmm --version: cannot stat ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Runs `path --version`: its trimmed stdout, or HYPERVISOR_UNAVAILABLE with why not. */
export function askVersion(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(path, ['--version'], { timeout: 10_000 }, (err, stdout) => {
      if (err) return reject(new VcError('HYPERVISOR_UNAVAILABLE', `${path} --version: ${err.message}`, { cause: err }));
      resolve(stdout.trim());
    });
  });
}

/**
 * `--version` answers by path, each asked again once the binary's identity changes. Concurrent
 * callers share one spawn; a failed ask is not kept (the next call asks again).
 */
export class VersionCache {
  readonly #entries = new Map<string, { identity: string; version: Promise<string> }>();

  constructor(private readonly ask: (path: string) => Promise<string> = askVersion) {}

  async get(path: string): Promise<string> {
    // Taken before the spawn: a binary replaced in between is kept under its old identity, which
    // the next call's stat no longer matches, so it is asked again then.
    const identity = await binaryIdentity(path);
    const kept = this.#entries.get(path);
    if (kept && kept.identity === identity) return kept.version;
    const version = this.ask(path);
    const entry = { identity, version };
    this.#entries.set(path, entry);
    version.catch(() => {
      if (this.#entries.get(path) === entry) this.#entries.delete(path);
    });
    return version;
  }
}
