// A minimal WebSocket client (RFC 6455) for the tests: Node 20 has none, and containerd's streaming
// server (Exec, Attach) speaks WebSocket besides SPDY. Over a plain TCP socket it sends the HTTP/1.1
// Upgrade with a random Sec-WebSocket-Key and checks the server's Sec-WebSocket-Accept; it masks
// every frame it sends (servers reject unmasked client frames), reassembles fragmented messages,
// answers pings, and closes with a close frame. ws:// only: the streaming server here is plain HTTP.
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_MESSAGE = 64 << 20;

export const Opcode = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface WebSocketMessage {
  binary: boolean;
  data: Buffer;
}

export interface ConnectOptions {
  /** Subprotocols offered in Sec-WebSocket-Protocol, preferred first; the server must pick one. */
  protocols?: string[];
  /** For the connect and the upgrade (default 10 s). */
  timeoutMs?: number;
}

/** The Sec-WebSocket-Accept a server must answer for `key`. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/** One frame as a client sends it: FIN set, masked with a random key. */
export function encodeClientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const lenBytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lenBytes + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = 0x80 | (lenBytes === 0 ? len : lenBytes === 2 ? 126 : 127);
  if (lenBytes === 2) head.writeUInt16BE(len, 2);
  if (lenBytes === 8) head.writeBigUInt64BE(BigInt(len), 2);
  const mask = randomBytes(4);
  mask.copy(head, 2 + lenBytes);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, body]);
}

export interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/**
 * The first whole frame at the start of `buf` and the bytes it took, or null when more bytes are
 * needed. Throws on what a server must not send: masked frames, reserved bits, oversized or
 * fragmented control frames.
 */
export function decodeServerFrame(buf: Buffer): { frame: Frame; used: number } | null {
  if (buf.length < 2) return null;
  const b0 = buf[0]!, b1 = buf[1]!;
  if (b0 & 0x70) throw new Error(`WebSocket: reserved bits set in a frame (first byte 0x${b0.toString(16)}); no extension was negotiated`);
  if (b1 & 0x80) throw new Error('WebSocket: the server sent a masked frame (RFC 6455 5.1 forbids it)');
  const fin = (b0 & 0x80) !== 0, opcode = b0 & 0x0f;
  let len = b1 & 0x7f, at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2); at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(MAX_MESSAGE)) throw new Error(`WebSocket: a frame of ${big} bytes (the limit is ${MAX_MESSAGE})`);
    len = Number(big); at = 10;
  }
  if (opcode >= 8 && (!fin || len > 125)) throw new Error(`WebSocket: control frame opcode ${opcode} fragmented or over 125 bytes (${len})`);
  if (buf.length < at + len) return null;
  return { frame: { fin, opcode, payload: buf.subarray(at, at + len) }, used: at + len };
}

/**
 * An open WebSocket. Events: 'message' (WebSocketMessage), 'close' (code, reason) once, when the
 * connection is gone whichever side closed it, 'error' (Error) before a 'close'. Attach listeners
 * as soon as connect() resolves: messages are not held for late listeners.
 */
export class WebSocketClient extends EventEmitter {
  private pending: Buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private closeSent = false;
  private closed = false;
  /** The close code and reason the server sent (1005 when its close frame had none). */
  closeCode = 0;
  closeReason = '';

  private constructor(private readonly socket: Socket, readonly protocol: string, head: Buffer) {
    super();
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.emit('error', err));
    socket.on('close', () => this.finish());
    // Frames that came with the 101: after the caller's `await connect()` has attached its listeners.
    // Held in `pending`, so bytes the socket reads meanwhile queue behind them.
    this.pending = head;
    if (head.length) setImmediate(() => this.onData(Buffer.alloc(0)));
  }

  /** Connects to ws://HOST:PORT/PATH (or http://, the same here) and upgrades. */
  static connect(url: string, opts: ConnectOptions = {}): Promise<WebSocketClient> {
    const u = new URL(url);
    if (u.protocol !== 'ws:' && u.protocol !== 'http:') throw new Error(`WebSocket: url ${url}: only ws:// and http:// are supported`);
    const port = Number(u.port || 80);
    const key = randomBytes(16).toString('base64');
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const request = [
      `GET ${u.pathname}${u.search} HTTP/1.1`,
      `Host: ${u.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      ...(opts.protocols?.length ? [`Sec-WebSocket-Protocol: ${opts.protocols.join(', ')}`] : []),
      '', '',
    ].join('\r\n');
    return new Promise((resolve, reject) => {
      const socket = connect(port, u.hostname);
      let got = Buffer.alloc(0);
      const fail = (why: string) => { socket.destroy(); clearTimeout(timer); reject(new Error(`WebSocket ${url}: ${why}`)); };
      const timer = setTimeout(() => fail(`no upgrade within ${timeoutMs} ms`), timeoutMs);
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) { if (got.length > 65536) fail('response headers over 64 KiB'); return; }
        socket.off('data', onData); socket.off('error', onError); socket.off('close', onClose);
        clearTimeout(timer);
        const [status = '', ...lines] = got.subarray(0, end).toString('latin1').split('\r\n');
        const headers = new Map<string, string>();
        for (const l of lines) { const i = l.indexOf(':'); if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()); }
        const body = got.subarray(end + 4);
        if (!/^HTTP\/1\.1 101\b/.test(status)) return fail(`the server answered "${status}", not 101 Switching Protocols: ${body.toString().slice(0, 500)}`);
        if (headers.get('upgrade')?.toLowerCase() !== 'websocket') return fail(`Upgrade: ${headers.get('upgrade')} in the 101 (expected websocket)`);
        if (!/\bupgrade\b/i.test(headers.get('connection') ?? '')) return fail(`Connection: ${headers.get('connection')} in the 101 (expected Upgrade)`);
        if (headers.get('sec-websocket-accept') !== acceptFor(key)) return fail(`Sec-WebSocket-Accept ${headers.get('sec-websocket-accept')} is not ${acceptFor(key)}, the answer to our key`);
        const protocol = headers.get('sec-websocket-protocol') ?? '';
        if (opts.protocols?.length && !opts.protocols.includes(protocol)) return fail(`the server chose subprotocol "${protocol}", not one of ${opts.protocols.join(', ')}`);
        resolve(new WebSocketClient(socket, protocol, body));
      };
      const onError = (err: Error) => fail(err.message);
      const onClose = () => fail(`the connection closed during the upgrade (got ${JSON.stringify(got.toString('latin1').slice(0, 300))})`);
      socket.on('data', onData); socket.once('error', onError); socket.once('close', onClose);
      socket.once('connect', () => socket.write(request));
    });
  }

  /** Sends one message, unfragmented (binary unless `binary` is false). */
  send(data: Buffer | string, binary = true): void {
    if (this.closeSent || this.closed) throw new Error('WebSocket: send after close');
    this.socket.write(encodeClientFrame(binary ? Opcode.binary : Opcode.text, Buffer.from(data)));
  }

  ping(data: Buffer = Buffer.alloc(0)): void {
    this.socket.write(encodeClientFrame(Opcode.ping, data));
  }

  /** Sends a close frame; the connection ends when the server answers with its own (or drops). */
  close(code = 1000, reason = ''): void {
    if (this.closeSent || this.closed) return;
    this.closeSent = true;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    this.socket.write(encodeClientFrame(Opcode.close, payload));
    // A server that never answers the close does not hold the test.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Drops the TCP connection at once, without a close handshake. */
  destroy(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
    try {
      for (;;) {
        const got = decodeServerFrame(this.pending);
        if (!got) return;
        this.pending = this.pending.subarray(got.used);
        this.onFrame(got.frame);
      }
    } catch (err) {
      this.emit('error', err);
      this.socket.destroy();
    }
  }

  private onFrame({ fin, opcode, payload }: Frame): void {
    switch (opcode) {
      case Opcode.ping:
        if (!this.closeSent) this.socket.write(encodeClientFrame(Opcode.pong, payload));
        return;
      case Opcode.pong:
        this.emit('pong', Buffer.from(payload));
        return;
      case Opcode.close:
        this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.closeReason = payload.subarray(2).toString();
        if (!this.closeSent) { this.closeSent = true; this.socket.write(encodeClientFrame(Opcode.close, payload.subarray(0, 2))); }
        this.socket.end();
        return;
      case Opcode.text:
      case Opcode.binary:
        if (this.fragments.length) throw new Error(`WebSocket: a new message (opcode ${opcode}) inside a fragmented one`);
        this.fragmentOpcode = opcode;
        break;
      case Opcode.continuation:
        if (!this.fragments.length) throw new Error('WebSocket: a continuation frame with no message to continue');
        break;
      default:
        throw new Error(`WebSocket: unknown opcode ${opcode}`);
    }
    this.fragments.push(Buffer.from(payload));
    if (!fin) return;
    const data = Buffer.concat(this.fragments);
    this.fragments = [];
    this.emit('message', { binary: this.fragmentOpcode === Opcode.binary, data } satisfies WebSocketMessage);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', this.closeCode || 1006, this.closeReason);
  }
}
