// The kubelet's side of CRI's streaming Exec and Attach: the URL CRI answers is on containerd's
// streaming server, which takes a WebSocket with the subprotocol v4.channel.k8s.io (or the older
// channel.k8s.io). Every message's first byte is its channel: 0 stdin (to the server), 1 stdout,
// 2 stderr, 3 the outcome, 4 terminal resizes (to the server, JSON {Width, Height}). Under v4 the
// outcome is a JSON metav1.Status — Success, or Failure with reason NonZeroExitCode and the code in
// details.causes[{reason: ExitCode, message}]; under channel.k8s.io it is only an error's text.
// The server writes an empty stdout (or stderr) message first, to say the streams are up.
import { WebSocketClient, type WebSocketMessage } from './websocket.js';

export const STREAM_PROTOCOLS = ['v4.channel.k8s.io', 'channel.k8s.io'];
export const Channel = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4 } as const;

/** The Status the server writes on channel 3 under v4. */
export interface StreamStatus {
  status?: string;
  message?: string;
  reason?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}

export interface StreamResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** Channel 3 as written (the Status JSON under v4). */
  statusText: string;
  protocol: string;
}

/** The exit code `statusText` (channel 3) says, or throws naming what it says instead. */
export function exitCodeOf(statusText: string, protocol: string): number {
  if (protocol !== 'v4.channel.k8s.io') {
    if (statusText === '') return 0;
    throw new Error(`stream (${protocol}): the server reports an error: ${statusText}`);
  }
  if (statusText === '') throw new Error('stream: the connection ended with no Status on channel 3');
  let s: StreamStatus;
  try { s = JSON.parse(statusText) as StreamStatus; } catch { throw new Error(`stream: channel 3 is not JSON: ${statusText}`); }
  if (s.status === 'Success') return 0;
  if (s.status === 'Failure' && s.reason === 'NonZeroExitCode') {
    const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (!cause || !Number.isInteger(code)) throw new Error(`stream: a NonZeroExitCode Status without an ExitCode cause: ${statusText}`);
    return code;
  }
  throw new Error(`stream: the server reports ${s.status ?? '(no status)'} ${s.reason ?? ''}: ${s.message ?? statusText}`);
}

/**
 * One open Exec or Attach stream. Output accumulates in `stdout`/`stderr` as it arrives; `done`
 * settles when the server ends the connection (after writing channel 3).
 */
export class CriStream {
  stdout = '';
  stderr = '';
  statusText = '';
  readonly done: Promise<StreamResult>;
  private waiters: (() => void)[] = [];

  constructor(private readonly ws: WebSocketClient) {
    ws.on('message', (m: WebSocketMessage) => this.onMessage(m));
    this.done = new Promise((resolve, reject) => {
      let failure: Error | null = null;
      ws.on('error', (err: Error) => { failure ??= err; });
      ws.on('close', () => {
        this.wake();
        // A reset after the status arrived is the server dropping the connection while our close
        // frame was on the way: everything was said already.
        const afterStatus = this.statusText !== '' && (failure as NodeJS.ErrnoException | null)?.code === 'ECONNRESET';
        if (failure && !afterStatus) return reject(failure);
        try {
          resolve({ stdout: this.stdout, stderr: this.stderr, exitCode: exitCodeOf(this.statusText, ws.protocol), statusText: this.statusText, protocol: ws.protocol });
        } catch (err) { reject(err as Error); }
      });
    });
    this.done.catch(() => {});  // the caller may only wait for output, then close
  }

  get protocol(): string { return this.ws.protocol; }

  /** Writes to the process's stdin. */
  write(data: string | Buffer): void {
    this.ws.send(Buffer.concat([Buffer.from([Channel.stdin]), Buffer.from(data)]));
  }

  /** Tells the server the terminal's size (meaningful with tty). */
  resize(width: number, height: number): void {
    this.ws.send(Buffer.concat([Buffer.from([Channel.resize]), Buffer.from(JSON.stringify({ Width: width, Height: height }))]));
  }

  /** Resolves once `stream`'s output includes `text`; rejects after `timeoutMs` or when the stream ends without it. */
  async waitFor(stream: 'stdout' | 'stderr', text: string, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let ended = false;
    const onEnd = () => { ended = true; };
    this.done.then(onEnd, onEnd);
    while (!this[stream].includes(text)) {
      if (ended) throw new Error(`stream ended before ${stream} showed ${JSON.stringify(text)}; ${stream}: ${JSON.stringify(this[stream])}, status: ${this.statusText}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${JSON.stringify(text)} on ${stream}; it has ${JSON.stringify(this[stream])}`);
      await new Promise<void>((wake) => { const t = setTimeout(wake, left); this.waiters.push(() => { clearTimeout(t); wake(); }); });
    }
  }

  /** Closes the WebSocket (for Attach: detaches, the container keeps running). */
  close(): void {
    this.ws.close();
  }

  private onMessage({ data }: WebSocketMessage): void {
    if (data.length === 0) return;
    const text = data.subarray(1).toString();
    switch (data[0]) {
      case Channel.stdout: this.stdout += text; break;
      case Channel.stderr: this.stderr += text; break;
      case Channel.status: this.statusText += text; break;
      default: this.ws.emit('error', new Error(`stream: a message on channel ${data[0]}, which the server does not write`));
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Opens the streaming URL CRI's Exec or Attach answered. */
export async function openStream(url: string, timeoutMs = 10_000): Promise<CriStream> {
  return new CriStream(await WebSocketClient.connect(url, { protocols: STREAM_PROTOCOLS, timeoutMs }));
}

export interface StreamExecOptions {
  /** Written to stdin at once (the Exec must have been asked with stdin: true). */
  stdin?: string | Buffer;
  /**
   * The Exec was asked with tty: true — send a terminal size first (80×24), as kubectl does. (With
   * a tty the server writes stderr into stdout and the terminal turns \n into \r\n.)
   */
  tty?: boolean;
  /** How long the whole exec may take (default 30 s). */
  timeoutMs?: number;
}

/** Runs the exec CRI's Exec answered `url` for to its end: its output and exit code. */
export async function streamExec(url: string, opts: StreamExecOptions = {}): Promise<StreamResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const s = await openStream(url, timeoutMs);
  if (opts.tty) s.resize(80, 24);
  if (opts.stdin !== undefined) s.write(opts.stdin);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { s.close(); reject(new Error(`streamExec ${url}: no end within ${timeoutMs} ms; stdout ${JSON.stringify(s.stdout)}, stderr ${JSON.stringify(s.stderr)}`)); }, timeoutMs);
  });
  try {
    return await Promise.race([s.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
