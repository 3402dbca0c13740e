/**
 * The first `create` of a root starts its daemon: detached, in its own session, with nothing of the
 * engine's stdio. A lock directory keeps two concurrent creates from starting two daemons; the one
 * that starts it waits until the daemon says "ready" on a pipe (fd 3), i.e. until it listens.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonAnswers } from './daemon-client.js';
import { startDetachedServer } from '../host/detached.js';
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
  await startDetachedServer({
    args: [...DAEMON_NODE_FLAGS, entry, '--root', root, ...(debug ? ['--debug'] : []), 'daemon'],
    cwd: '/', name: 'the daemon', listensOn: daemonSocket(root), logHint: `see ${join(root, 'daemon.log')}`, timeoutMs: READY_TIMEOUT_MS,
  });
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
