/**
 * The CLI's side of `<root>/daemon.sock`: one REQUEST frame (a JSON object with `op`), one REPLY
 * frame (`{"ok":true,…}` or `{"ok":false,"error":"…"}`), then the connection closes.
 */
import { createConnection } from 'node:net';
import { encodeFrame, Frame, FrameReader } from './frames.js';

export interface Reply {
  ok: boolean;
  error?: string;
  [key: string]: unknown;
}

/** No daemon answered, or it closed the connection without answering (it was leaving). */
export class DaemonUnavailable extends Error {}

export function request(socketPath: string, body: Record<string, unknown>, timeoutMs = 120_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const reader = new FrameReader();
    let connected = false;
    const timer = setTimeout(() => finish(new Error(`${String(body.op)}: the daemon did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
    const finish = (err: Error | null, reply?: Reply): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(reply!);
    };
    socket.once('connect', () => {
      connected = true;
      socket.write(encodeFrame(Frame.REQUEST, JSON.stringify(body)));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of reader.push(chunk)) {
          if (frame.type !== Frame.REPLY) throw new Error(`the daemon answered frame type ${frame.type}, not a reply`);
          finish(null, JSON.parse(frame.payload.toString('utf8')) as Reply);
          return;
        }
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.once('error', (err) => finish(connected ? err : new DaemonUnavailable(`no daemon answers on ${socketPath}: ${err.message}`)));
    socket.once('close', () => finish(new DaemonUnavailable(`${String(body.op)}: the daemon closed the connection without an answer (see its log, ${socketPath.replace(/daemon\.sock$/, 'daemon.log')})`)));
  });
}

/** Whether a daemon accepts connections on the socket now. */
export function daemonAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** A request whose failure is an error with the daemon's message. */
export async function call(socketPath: string, body: Record<string, unknown>, timeoutMs?: number): Promise<Reply> {
  const reply = await request(socketPath, body, timeoutMs);
  if (!reply.ok) throw new Error(reply.error ?? `${String(body.op)} failed`);
  return reply;
}
