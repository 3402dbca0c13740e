#!/usr/bin/env node
// A stand-in for vc-holder written in Node, speaking the holder protocol of issue 16 with its own
// codec (not src/oci-runtime/frames.ts), so tests check the daemon against the contract rather than
// against itself. Without --console-socket only (no terminal). Used by the unit test of the daemon
// and, where vc-holder is not built yet, by the integration test (which says so).
import { createConnection } from 'node:net';
import { writeSync, closeSync } from 'node:fs';
import { constants } from 'node:os';

export const T = { HELLO: 1, ACK: 2, STDIN: 3, STDIN_EOF: 4, STDOUT: 5, STDERR: 6, SIGNAL: 7, RESIZE: 8, ERROR: 9, EXIT: 10 } as const;

export function frame(type: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = Buffer.from(payload);
  const out = Buffer.alloc(5 + body.length);
  out[0] = type;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Splits a byte stream into frames; `onFrame` gets each whole one. */
export function frameParser(onFrame: (type: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) return;
      onFrame(buf[0]!, buf.subarray(5, 5 + len));
      buf = buf.subarray(5 + len);
    }
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function runAsHolder(): void {
  const socketPath = arg('socket');
  const id = arg('id');
  if (!socketPath || !id) {
    process.stderr.write('fake-holder: --socket and --id are required\n');
    process.exit(2);
  }
  if (arg('console-socket')) {
    process.stderr.write('fake-holder: --console-socket is not supported by the test stand-in\n');
    process.exit(2);
  }
  const readyFd = Number(arg('ready-fd') ?? -1);
  const sock = createConnection(socketPath);
  let exiting = false;
  sock.on('connect', () => sock.write(frame(T.HELLO, JSON.stringify({ id, exec: arg('exec') ?? null, tty: false, rows: 0, cols: 0 }))));
  sock.on('data', frameParser((type, payload) => {
    if (type === T.ACK) {
      if (readyFd >= 0) {
        writeSync(readyFd, 'r');
        closeSync(readyFd);
      }
      process.stdin.on('data', (d: Buffer) => sock.write(frame(T.STDIN, d)));
      process.stdin.on('end', () => sock.write(frame(T.STDIN_EOF)));
      for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) {
        process.on(s, () => sock.write(frame(T.SIGNAL, Buffer.from([constants.signals[s]]))));
      }
    } else if (type === T.STDOUT) process.stdout.write(payload);
    else if (type === T.STDERR) process.stderr.write(payload);
    else if (type === T.ERROR) {
      process.stderr.write(`${payload.toString()}\n`);
      process.exit(255);
    } else if (type === T.EXIT) {
      exiting = true;
      const [kind, value] = [payload[0], payload[1]!];
      process.stdout.write('', () => {
        if (kind === 0) process.exit(value);
        const name = Object.entries(constants.signals).find(([, n]) => n === value)?.[0] as NodeJS.Signals;
        process.removeAllListeners(name);
        process.kill(process.pid, name);
      });
    }
  }));
  sock.on('close', () => { if (!exiting) process.exit(255); });
  sock.on('error', () => { if (!exiting) process.exit(255); });
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'))) runAsHolder();
