/**
 * The client of `vc-vmm launcher` (native/vmm/cmd/launcher.cc): a `vc-vmm run` performed by one
 * of the launcher's pre-forked spares instead of a process spawned here, with this process's
 * `VC_*` environment and PATH, a working directory and optionally a network namespace, exactly as
 * `execFile(vc-vmm, argv)` under `nsenter --net=…` would run it. The reply is the run's stdout and
 * stderr as one stream, ended by a trailer carrying a nonce only this call knows and the exit code.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { VcError } from '../../errors.js';

/** The launcher's socket the library uses for kvm pods when set (unset: vc-vmm is spawned). */
export const LAUNCHER_ENV = 'VC_VMM_LAUNCHER';

export interface LauncherRun {
  /** vc-vmm's exit code, as a spawned vc-vmm would have exited. */
  code: number;
  /** Its stdout and stderr, interleaved as written. */
  output: string;
}

export interface LauncherCall {
  cwd?: string;
  netns?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Each chunk of output as it arrives (the bench times the guest's first line). */
  onOutput?: (chunk: string) => void;
}

/** What a spare gets of this process's environment: what vc-vmm reads (VC_*) and PATH. */
export function launcherEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => (e[0] === 'PATH' || e[0].startsWith('VC_')) && typeof e[1] === 'string'));
}

/** The request line for `argv` (which starts with "run"). */
export function launchRequest(argv: readonly string[], call: Pick<LauncherCall, 'cwd' | 'netns'>, nonce: string, env: Record<string, string>): string {
  return `${JSON.stringify({ argv, env, cwd: call.cwd ?? '/', netns: call.netns ?? null, nonce })}\n`;
}

/** Splits a reply into output and exit code; null when the trailer is missing (the spare died, or refused the request). */
export function parseLaunchReply(reply: string, nonce: string): LauncherRun | null {
  const m = new RegExp(`\\n${nonce} exit (\\d+)\\n$`).exec(reply);
  return m ? { code: Number(m[1]), output: reply.slice(0, m.index) } : null;
}

/**
 * Runs `argv` through the launcher at `socketPath`. Resolves null when no launcher listens there
 * (the socket is missing or refuses: the caller spawns vc-vmm instead); rejects when a launcher
 * took the request and did not finish it.
 */
export function runThroughLauncher(socketPath: string, argv: readonly string[], call: LauncherCall): Promise<LauncherRun | null> {
  const nonce = randomBytes(16).toString('hex');
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let connected = false;
    let reply = '';
    const timer = setTimeout(() => socket.destroy(new VcError('HYPERVISOR_FAILED', `the VMM launcher at ${socketPath} did not finish within ${call.timeoutMs} ms`)), call.timeoutMs);
    const onAbort = () => socket.destroy(new VcError('ABORTED', `the VMM launch through ${socketPath} was aborted`, { cause: call.signal?.reason }));
    call.signal?.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      connected = true;
      socket.write(launchRequest(argv, call, nonce, launcherEnv(process.env)));
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
      call.onOutput?.(chunk);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      done();
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) resolve(null);
      else reject(err instanceof VcError ? err : new VcError('HYPERVISOR_FAILED', `the VMM launcher at ${socketPath}: ${err.message}`, { cause: err }));
    });
    socket.on('close', (hadError) => {
      if (hadError) return;
      done();
      const run = parseLaunchReply(reply, nonce);
      if (run) resolve(run);
      else reject(new VcError('HYPERVISOR_FAILED', `the VMM launcher at ${socketPath} ended the run without an exit status${reply.trim() ? `: ${reply.trim().split('\n').slice(-3).join(' ')}` : ''}`));
    });
  });
}
