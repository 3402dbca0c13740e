// The kubelet's side of CRI's PortForward over WebSocket: the URL PortForward answers is on
// containerd's streaming server, which takes a WebSocket (subprotocol v4.channel.k8s.io, or none;
// portforward.k8s.io is the SPDY protocol's name, which a WebSocket upgrade does not accept) for
// the ports named in the PortForward request. For the i-th port, channel 2i carries the data both
// ways and channel 2i+1 the server's error text; each message's first byte is its channel. The
// server first writes the port on both channels (2 bytes, little-endian), then dials the port in
// the sandbox. There is no half-close: a port's forward ends when the pod's side closes (then the
// server closes its channels) or the client closes the WebSocket; the WebSocket closes once every
// port's forward has ended.
import { WebSocketClient, type WebSocketMessage } from './websocket.js';

export const PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io'];

interface PortState {
  port: number;
  /** Bytes of the 2-byte port header still to come on the data and error channels. */
  header: [Buffer, Buffer];
  data: Buffer;
  error: string;
}

/** One open PortForward WebSocket: `data(i)` and `error(i)` accumulate per requested port. */
export class PortForwardStream {
  readonly closed: Promise<void>;
  private readonly ports: PortState[];
  private waiters: (() => void)[] = [];
  private ended = false;
  private failure: Error | null = null;

  constructor(private readonly ws: WebSocketClient, ports: number[]) {
    this.ports = ports.map((port) => ({ port, header: [Buffer.alloc(0), Buffer.alloc(0)], data: Buffer.alloc(0), error: '' }));
    ws.on('message', (m: WebSocketMessage) => this.onMessage(m));
    ws.on('error', (err: Error) => { this.failure ??= err; this.wake(); });
    this.closed = new Promise((resolve) => ws.on('close', () => { this.ended = true; this.wake(); resolve(); }));
  }

  get protocol(): string { return this.ws.protocol; }
  get isClosed(): boolean { return this.ended; }

  /** What the pod's side of the i-th port sent so far. */
  data(i = 0): Buffer { return this.state(i).data; }
  /** What the server wrote on the i-th port's error channel so far. */
  error(i = 0): string { return this.state(i).error; }

  /** Sends bytes to the i-th port. */
  write(data: string | Buffer, i = 0): void {
    this.state(i);
    this.ws.send(Buffer.concat([Buffer.from([2 * i]), Buffer.from(data)]));
  }

  /** Resolves once `cond` holds; rejects after `timeoutMs`, or when the WebSocket closes first. */
  async until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.failure) throw new Error(`port-forward: ${this.failure.message} while waiting for ${what}`);
      if (this.ended) throw new Error(`port-forward: the WebSocket closed before ${what}; ${this.describe()}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`port-forward: timed out after ${timeoutMs} ms waiting for ${what}; ${this.describe()}`);
      await new Promise<void>((wake) => { const t = setTimeout(wake, left); this.waiters.push(() => { clearTimeout(t); wake(); }); });
    }
  }

  /** Resolves once the server has closed the WebSocket; rejects after `timeoutMs`. */
  async untilClosed(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`port-forward: the WebSocket still open after ${timeoutMs} ms; ${this.describe()}`)), timeoutMs);
    });
    try { await Promise.race([this.closed, timeout]); } finally { clearTimeout(timer); }
  }

  close(): void { this.ws.close(); }

  private describe(): string {
    return this.ports.map((p, i) => `port ${p.port} (#${i}): data ${JSON.stringify(p.data.toString().slice(0, 300))}, error ${JSON.stringify(p.error)}`).join('; ');
  }

  private state(i: number): PortState {
    const s = this.ports[i];
    if (!s) throw new Error(`port-forward: no port #${i}; the request named ${this.ports.length}`);
    return s;
  }

  private onMessage({ data }: WebSocketMessage): void {
    if (data.length === 0) return;
    const channel = data[0]!;
    const s = this.ports[channel >> 1];
    if (!s) return void this.ws.emit('error', new Error(`port-forward: a message on channel ${channel}, beyond the ${this.ports.length} port(s) asked for`));
    const kind = (channel & 1) as 0 | 1;
    let body = data.subarray(1);
    // The port header first: two bytes, little-endian, which may come split or with data behind.
    const header = s.header[kind];
    if (header.length < 2) {
      const take = body.subarray(0, 2 - header.length);
      const now = Buffer.concat([header, take]);
      s.header[kind] = now;
      body = body.subarray(take.length);
      if (now.length === 2 && now.readUInt16LE(0) !== s.port) {
        return void this.ws.emit('error', new Error(`port-forward: channel ${channel} began with port ${now.readUInt16LE(0)}, not ${s.port}`));
      }
    }
    if (kind === 0) s.data = Buffer.concat([s.data, body]);
    else s.error += body.toString();
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Opens the streaming URL CRI's PortForward answered for `ports` (in the request's order). */
export async function openPortForward(url: string, ports: number[], timeoutMs = 10_000): Promise<PortForwardStream> {
  return new PortForwardStream(await WebSocketClient.connect(url, { protocols: PORT_FORWARD_PROTOCOLS, timeoutMs }), ports);
}

/**
 * One HTTP/1.0 GET of `path` through a PortForward URL for one port: the response as text, read
 * until the server's side closes (httpd does after answering) and the WebSocket with it.
 */
export async function httpGetThrough(url: string, port: number, path = '/', timeoutMs = 20_000): Promise<{ response: string; error: string }> {
  const s = await openPortForward(url, [port], timeoutMs);
  try {
    s.write(`GET ${path} HTTP/1.0\r\nHost: localhost\r\n\r\n`);
    await s.untilClosed(timeoutMs);
    return { response: s.data().toString(), error: s.error() };
  } finally {
    s.close();
  }
}
