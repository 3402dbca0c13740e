/**
 * A process's stdio as containerd gives it: FIFO paths (or empty). containerd (or ctr) holds the
 * other ends. The FIFOs are opened without blocking the event loop and wrapped as pipe sockets, so
 * no thread waits on them; an open that would wait for ever (nobody ever opens stdin's write end)
 * is released by opening the other end ourselves when the process goes.
 */
import { constants, open, openSync, closeSync } from 'node:fs';
import { promisify } from 'node:util';
import { Socket } from 'node:net';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { RpcError, StatusCode } from './ttrpc/errors.js';

export interface StdioPaths {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

export interface OpenStdio {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** Closes every end (idempotent); a pending open of stdin is released. */
  close(): void;
}

function schemeless(path: string, field: string): string {
  if (!path) return '';
  const plain = path.startsWith('fifo://') ? path.slice('fifo://'.length) : path;
  if (/^[a-z]+:\/\//.test(plain)) {
    throw new RpcError(StatusCode.InvalidArgument, `${field}: ${JSON.stringify(path)}: only FIFO paths are supported, not ${plain.split(':')[0]} URIs (binary or file logging)`);
  }
  return plain;
}

const openFd = promisify(open);

/** A raw fd (not a FileHandle, which would close it when collected) handed to a pipe socket. */
async function openPipe(path: string, flags: number): Promise<Socket> {
  const fd = await openFd(path, flags);
  const writable = (flags & constants.O_WRONLY) !== 0;
  return new Socket({ fd, readable: !writable, writable });
}

export async function openStdio(paths: StdioPaths, what: string): Promise<OpenStdio> {
  const stdinPath = schemeless(paths.stdin, `${what} stdin`);
  const stdoutPath = schemeless(paths.stdout, `${what} stdout`);
  const stderrPath = paths.terminal ? '' : schemeless(paths.stderr, `${what} stderr`);
  const opened: Socket[] = [];
  let stdinPending = false;
  let closed = false;
  const result: OpenStdio = {
    close() {
      if (closed) return;
      closed = true;
      for (const socket of opened) socket.destroy();
      if (stdinPending) releasePendingRead(stdinPath);
    },
  };
  try {
    // The readers of stdout/stderr are containerd's, open already: these opens return at once.
    if (stdoutPath) opened.push(result.stdout = await openPipe(stdoutPath, constants.O_WRONLY));
    if (stderrPath) opened.push(result.stderr = await openPipe(stderrPath, constants.O_WRONLY));
  } catch (err) {
    result.close();
    throw new RpcError(StatusCode.Internal, `${what}: cannot open its stdio FIFO: ${(err as Error).message}`);
  }
  if (stdinPath) {
    // stdin's writer may come later (ctr opens it once the task starts): wait in the background.
    const stdin = new PassThrough();
    result.stdin = stdin;
    stdinPending = true;
    openPipe(stdinPath, constants.O_RDONLY).then((socket) => {
      stdinPending = false;
      if (closed) {
        socket.destroy();
        return;
      }
      opened.push(socket);
      socket.pipe(stdin);
      socket.on('error', () => stdin.end());
    }, () => {
      stdinPending = false;
      stdin.end();
    });
  }
  return result;
}

/** Unblocks an open(O_RDONLY) waiting for a writer, by being that writer for a moment. */
function releasePendingRead(path: string): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: nobody waits any more; ENOENT: the FIFO is gone. Either way nothing is blocked.
  }
}
