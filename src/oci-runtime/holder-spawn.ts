/**
 * Starting the holder (`vc-holder`, native): the host process that stands for a container's init
 * or an exec — the pid engines wait on. It inherits this command's stdio (the engine's FIFOs or
 * pipes) unless it makes a terminal for `--console-socket`, connects to the daemon, and writes one
 * byte to its ready fd once the daemon accepted it; only then is its pid written to `--pid-file`.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { nativeExecutable } from '../native.js';

/** For tests and packagers: another holder executable than the one built or shipped. */
export const HOLDER_ENV = 'VIRTC_RUNTIME_HOLDER';

export function holderExecutable(env: NodeJS.ProcessEnv = process.env): string {
  return env[HOLDER_ENV] || nativeExecutable('vc-holder');
}

export interface HolderOptions {
  socket: string;
  id: string;
  exec?: string;
  consoleSocket?: string;
  /**
   * Starts the holder in a network namespace of its own, pinned by a bind mount on this file
   * (`unshare --net=FILE`, which execs it: the pid stays this process's child), for a spec that asks
   * for a new one without a path: the engine's hooks fill that namespace and the pod takes its
   * network from the pin.
   */
  newNetns?: string;
}

export interface SpawnedHolder {
  pid: number;
  /** Resolves when the holder exits: its code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const READY_TIMEOUT_MS = 60_000;

export function holderArgv(opts: HolderOptions, readyFd: number): string[] {
  return [
    '--socket', opts.socket, '--id', opts.id,
    ...(opts.exec ? ['--exec', opts.exec] : []),
    ...(opts.consoleSocket ? ['--console-socket', opts.consoleSocket] : []),
    '--ready-fd', String(readyFd),
  ];
}

export async function spawnHolder(opts: HolderOptions): Promise<SpawnedHolder> {
  const holder = holderExecutable();
  const argv = holderArgv(opts, 3);
  const file = opts.newNetns ? 'unshare' : holder;
  // The mount point first, as `ip netns add` makes it; the caller's record removal unmounts it.
  if (opts.newNetns) closeSync(openSync(opts.newNetns, 'a', 0o444));
  // With a terminal the holder keeps none of this command's stdio: an engine may read this command's
  // output from a pipe until EOF (containerd's runc shim does for a terminal's create), and a holder
  // holding the pipe's write end for the container's life would block it until then.
  const stdio = opts.consoleSocket ? 'ignore' : 'inherit';
  const child = spawn(file, opts.newNetns ? [`--net=${opts.newNetns}`, '--', holder, ...argv] : argv, { stdio: [stdio, stdio, stdio, 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: 127, signal: null }));
  });
  const ready = child.stdio[3]!;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`the holder (${file}, pid ${child.pid}) was not accepted by the daemon within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    ready.once('data', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve();
    });
    child.once('error', (err) => fail(new Error(`cannot run the holder ${file}: ${err.message}`)));
    void exited.then(({ code, signal }) => fail(new Error(`the holder exited (${signal ?? `code ${code}`}) before the daemon accepted it`)));
  });
  ready.destroy();
  // Not unref'd: a foreground exec waits for it; the other commands leave with process.exit.
  return { pid: child.pid!, exited };
}
