/**
 * The first `create` of a root starts its daemon: detached, in its own session, with nothing of the
 * engine's stdio. A lock directory keeps two concurrent creates from starting two daemons; the one
 * that starts it waits until the daemon says "ready" on a pipe (fd 3), i.e. until it listens.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonAnswers } from './daemon-client.js';
import { daemonSocket, processAlive } from './state-store.js';

const READY_TIMEOUT_MS = 20_000;
const LOCK_TIMEOUT_MS = 30_000;

/** V8 settings for a long-lived process where memory counts more than peak speed. */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--v8-pool-size=0'];

export async function ensureDaemon(root: string, entry: string, debug: boolean): Promise<void> {
  const socket = daemonSocket(root);
  if (await daemonAnswers(socket)) return;
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const release = await lock(join(root, 'daemon.lock'));
  try {
    if (await daemonAnswers(socket)) return;
    await startDaemon(root, entry, debug);
  } finally {
    release();
  }
}

async function startDaemon(root: string, entry: string, debug: boolean): Promise<void> {
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, entry, '--root', root, ...(debug ? ['--debug'] : []), 'daemon'], {
    cwd: '/', detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  const ready = child.stdio[3]!;
  await new Promise<void>((resolve, reject) => {
    let said = '';
    const timer = setTimeout(() => fail(new Error(`the daemon (pid ${child.pid}) did not listen on ${daemonSocket(root)} within ${READY_TIMEOUT_MS / 1000} s; see ${join(root, 'daemon.log')}`)), READY_TIMEOUT_MS);
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
    child.once('exit', (code, signal) => fail(new Error(`the daemon exited (${signal ?? `code ${code}`}) before listening; see ${join(root, 'daemon.log')}`)));
    child.once('error', fail);
  });
  ready.destroy();
  child.removeAllListeners('exit');
  child.unref();
}

/** mkdir is atomic: the directory is the lock, its `pid` file names the holder for stale-lock recovery. */
async function lock(dir: string): Promise<() => void> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(dir, { mode: 0o700 });
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSafe(join(dir, 'pid')));
    // A lock whose owner died (or never wrote its pid and is old) is taken over.
    if ((owner > 0 && !processAlive(owner)) || (!owner && Date.now() > deadline - LOCK_TIMEOUT_MS / 2)) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`${dir}: held by pid ${owner || '?'} for over ${LOCK_TIMEOUT_MS / 1000} s`);
    await sleep(50);
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
