// A long-lived server process started detached (its own session, no stdio of ours), waited for
// until it writes "ready\n" on fd 3 — i.e. listens — so its starter can exit and leave it running.
// Used by the containerd shim's `start` (its `serve`) and by virtc-runtime's first `create` (its
// daemon).
import { spawn } from 'node:child_process';

export interface DetachedServer {
  /** node's argv after the executable: flags, entry script, arguments. */
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** How it is named in errors ("the shim", "the daemon"). */
  name: string;
  /** Where it listens (for errors). */
  listensOn: string;
  /** Where to look when it fails (appended to errors). */
  logHint: string;
  timeoutMs: number;
}

/** Resolves once the server said ready; rejects (and SIGKILLs it) when it exits or times out first. */
export async function startDetachedServer(server: DetachedServer): Promise<void> {
  const child = spawn(process.execPath, server.args, {
    cwd: server.cwd, env: server.env ?? process.env, detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  const ready = child.stdio[3]!;
  await new Promise<void>((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => fail(new Error(`${server.name} (pid ${child.pid}) did not listen on ${server.listensOn} within ${server.timeoutMs} ms; ${server.logHint}`)), server.timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    ready.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => fail(new Error(`${server.name} exited (${signal ?? `code ${code}`}) before listening on ${server.listensOn}; ${server.logHint}`)));
    child.once('error', fail);
  });
  ready.destroy();
  child.removeAllListeners('exit');
  child.unref();
}
