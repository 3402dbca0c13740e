/**
 * `virtc-runtime daemon` (internal, one per --root, started by the first `create`): holds the agent
 * connections of the root's containers and relays their stdio to their holders. It listens on
 * `<root>/daemon.sock` (0600); a connection's first frame says what it is — REQUEST (the CLI: one
 * JSON request, one REPLY) or HELLO (a holder: the relay of the contract). Its pods live under
 * `<root>/pods`. It leaves once no container record is left.
 */
import { chmodSync, closeSync, mkdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { daemonAnswers } from './daemon-client.js';
import { DaemonContainers, RequestError, type Hello } from './daemon-containers.js';
import { encodeFrame, Frame, FrameError, FrameReader, type DecodedFrame } from './frames.js';
import type { HolderLink } from './holder-link.js';
import { RuntimeLog } from './log.js';
import { daemonSocket, listRecordIds, podsRoot, removeEmptyPodsRoot } from './state-store.js';

/** How long the daemon stays with no container record left (tests shorten it). */
const IDLE_EXIT_MS = Number(process.env.VIRTC_RUNTIME_IDLE_MS) || 10_000;

/** daemon.log becomes daemon.log.1 past this size: at most twice this on disk per root. */
const DAEMON_LOG_ROTATE_BYTES = 4 * 1024 * 1024;

export async function runDaemon(root: string, debug: boolean): Promise<number> {
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const log = new RuntimeLog(join(root, 'daemon.log'), 'text', debug, false, DAEMON_LOG_ROTATE_BYTES);
  const socketPath = daemonSocket(root);
  if (await daemonAnswers(socketPath)) {
    log.error(`another daemon serves ${root} already`);
    return 1;
  }
  rmSync(socketPath, { force: true });
  const containers = new DaemonContainers(root, { root: podsRoot(root), onProgress: (m) => log.debug(m) }, log);
  containers.recover();
  let inFlight = 0;
  let stopping = false;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => { stop = () => { stopping = true; resolve(); }; });
  let idleTimer: NodeJS.Timeout | null = null;
  // Leaves once idle with no record left (records of stopped containers keep it until deleted).
  const checkIdle = (): void => {
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (inFlight === 0 && listRecordIds(root).length === 0) stop();
    }, IDLE_EXIT_MS);
  };
  const server = createServer((socket) => serveConnection(socket, containers, log, {
    // Once leaving, a request is not begun: the CLI sees the connection close and starts a new daemon.
    begin: () => { if (stopping) return false; inFlight++; return true; },
    end: () => { inFlight--; checkIdle(); },
  }));
  await listen(server, socketPath);
  chmodSync(socketPath, 0o600);
  // For operators and tests: which process serves this root.
  writeFileSync(join(root, 'daemon.pid'), `${process.pid}\n`);
  tellReady();
  log.info(`daemon ${process.pid} serving ${root}`);
  checkIdle();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => { log.info(`${signal}: leaving`); stop(); });
  await stopped;
  log.info(`daemon ${process.pid} leaving (${containers.count} container(s) held)`);
  server.close();
  rmSync(socketPath, { force: true });
  rmSync(join(root, 'daemon.pid'), { force: true });
  if (containers.count === 0) removeEmptyPodsRoot(root);
  return 0;
}

interface Activity {
  /** false: the daemon is leaving and takes no more requests. */
  begin(): boolean;
  end(): void;
}

function serveConnection(socket: Socket, containers: DaemonContainers, log: RuntimeLog, activity: Activity): void {
  const reader = new FrameReader();
  let kind: 'unknown' | 'request' | 'holder' = 'unknown';
  let link: HolderLink | null = null;
  const early: DecodedFrame[] = [];
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    let frames: DecodedFrame[];
    try {
      frames = reader.push(chunk);
    } catch (err) {
      log.warn(`daemon.sock: ${(err as FrameError).message}; closing the connection`);
      socket.destroy();
      return;
    }
    for (const frame of frames) {
      if (kind === 'unknown') {
        if (frame.type === Frame.REQUEST) {
          kind = 'request';
          void answer(socket, frame, containers, log, activity);
        } else if (frame.type === Frame.HELLO) {
          kind = 'holder';
          const hello = parseHello(frame.payload);
          if (typeof hello === 'string') {
            socket.end(encodeFrame(Frame.ERROR, `HELLO: ${hello}`));
            return;
          }
          // Frames that arrive while the HELLO is answered (stdin typed early) wait for the link.
          void containers.attachHolder(socket, hello).then((made) => {
            link = made;
            for (const f of early.splice(0)) link?.onFrame(f);
          }, (err: Error) => socket.end(encodeFrame(Frame.ERROR, err.message)));
        } else {
          log.warn(`daemon.sock: a connection began with frame type ${frame.type}; closing it`);
          socket.destroy();
          return;
        }
      } else if (kind === 'holder') {
        if (link) link.onFrame(frame);
        else early.push(frame);
      }
    }
  });
}

async function answer(socket: Socket, frame: DecodedFrame, containers: DaemonContainers, log: RuntimeLog, activity: Activity): Promise<void> {
  if (!activity.begin()) {
    socket.destroy();
    return;
  }
  let reply: Record<string, unknown>;
  let request: Record<string, unknown> = {};
  try {
    request = JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>;
    log.debug(`request ${JSON.stringify(request)}`);
    reply = { ok: true, ...(await containers.handle(request)) };
  } catch (err) {
    const message = (err as Error).message;
    if (!(err instanceof RequestError)) log.warn(`${String(request.op)} ${String(request.id ?? '')}: ${message}`);
    reply = { ok: false, error: message, code: (err as { code?: string }).code };
  }
  if (!socket.destroyed) socket.end(encodeFrame(Frame.REPLY, JSON.stringify(reply)));
  activity.end();
}

export function parseHello(payload: Buffer): Hello | string {
  let raw: unknown;
  try {
    raw = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  const h = raw as Record<string, unknown>;
  if (typeof h !== 'object' || h === null) return 'expected a JSON object';
  if (typeof h.id !== 'string' || !h.id) return `id: expected a container id, got ${JSON.stringify(h.id)}`;
  if (h.exec !== undefined && h.exec !== null && typeof h.exec !== 'string') return `exec: expected a string or null, got ${JSON.stringify(h.exec)}`;
  const size = (name: 'rows' | 'cols'): number | string => {
    const v = h[name] ?? 0;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff ? v : `${name}: expected 0-65535, got ${JSON.stringify(v)}`;
  };
  const rows = size('rows');
  const cols = size('cols');
  if (typeof rows === 'string') return rows;
  if (typeof cols === 'string') return cols;
  return { id: h.id, exec: (h.exec as string | null | undefined) || null, tty: h.tty === true, rows, cols };
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** fd 3 is the starting `create`'s pipe: one line, then closed. */
function tellReady(): void {
  try {
    writeSync(3, 'ready\n');
    closeSync(3);
  } catch {
    // Run by hand without the pipe: nobody waits.
  }
}
