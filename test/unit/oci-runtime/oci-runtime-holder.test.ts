// The holder protocol on the daemon's side: the relay of one process to a holder (HolderLink) over a
// real unix socket, checked with the test's own codec (test/helpers/fake-holder.ts); and the daemon
// process itself — its socket, how it tells holders from CLI requests, its refusals, its recovery
// of records a crashed daemon left, and that it leaves once no container is left.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ExitStatus, PodProcess } from '../../../src/api/enter.js';
import { HolderLink, exitRecordOf } from '../../../src/oci-runtime/holder-link.js';
import { writeRecord, readRecord } from '../../../src/oci-runtime/state-store.js';
import { frame, frameParser, T } from '../../helpers/fake-holder.js';

const BIN = fileURLToPath(new URL('../../../../bin/virtc-runtime', import.meta.url));

function fakeProcess() {
  const calls: string[] = [];
  let settle!: (e: ExitStatus) => void;
  const waited = new Promise<ExitStatus>((resolve) => { settle = resolve; });
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const proc: PodProcess = {
    pid: 42, stdin, stdout, stderr,
    wait: () => waited,
    kill: async (s) => { calls.push(`kill ${String(s)}`); },
    resize: async (r, c) => { calls.push(`resize ${r}x${c}`); },
  };
  return { proc, calls, exit: (e: ExitStatus) => settle(e), stdin, stdout, stderr };
}

async function linked() {
  const dir = mkdtempSync(join(tmpdir(), 'vcrt-'));
  const path = join(dir, 's');
  const fake = fakeProcess();
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const client = createConnection(path);
  const serverSide = await accepted;
  const warnings: string[] = [];
  const link = new HolderLink(serverSide, fake.proc, fake.proc.wait().then(exitRecordOf), { onWarning: (m) => warnings.push(m) });
  serverSide.on('data', frameParser((type, payload) => link.onFrame({ type, payload: Buffer.from(payload) })));
  const got: Array<{ type: number; payload: Buffer }> = [];
  const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
  client.on('data', frameParser((type, payload) => got.push({ type, payload: Buffer.from(payload) })));
  const cleanup = () => { client.destroy(); server.close(); rmSync(dir, { recursive: true, force: true }); };
  return { fake, client, got, closed, warnings, cleanup };
}

const until = async (cond: () => boolean, what: string, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('relay: output as STDOUT/STDERR frames, input and EOF, signals and size, EXIT after all output', async () => {
  const { fake, client, got, closed, cleanup } = await linked();
  try {
    fake.stdout.write('hello ');
    fake.stderr.write('oops');
    const stdinText: Buffer[] = [];
    fake.stdin.on('data', (d: Buffer) => stdinText.push(d));
    let stdinEnded = false;
    fake.stdin.on('end', () => { stdinEnded = true; });
    client.write(frame(T.STDIN, 'typed'));
    client.write(frame(T.SIGNAL, Buffer.from([15])));
    client.write(Buffer.concat([frame(T.RESIZE, Buffer.from([0, 40, 0, 120])), frame(T.STDIN_EOF)]));
    await until(() => stdinEnded && fake.calls.length === 2, 'stdin EOF, kill and resize');
    assert.equal(Buffer.concat(stdinText).toString(), 'typed');
    assert.equal(fake.calls, ['kill 15', 'resize 40x120']);
    // Output written before the exit reaches the holder before EXIT.
    fake.stdout.end('world');
    fake.stderr.end();
    fake.exit({ exitCode: null, signal: 'SIGTERM' });
    await closed;
    const out = Buffer.concat(got.filter((f) => f.type === T.STDOUT).map((f) => f.payload)).toString();
    const err = Buffer.concat(got.filter((f) => f.type === T.STDERR).map((f) => f.payload)).toString();
    assert.equal([out, err], ['hello world', 'oops']);
    const last = got[got.length - 1]!;
    assert.equal([last.type, [...last.payload]], [T.EXIT, [1, 15]]);
  } finally {
    cleanup();
  }
});

test('relay: output over 1 MiB is split into frames of at most 1 MiB; exit code 3 as kind 0', async () => {
  const { fake, got, closed, cleanup } = await linked();
  try {
    const big = Buffer.alloc(2.5 * 1024 * 1024, 0x61);
    fake.stdout.end(big);
    fake.stderr.end();
    fake.exit({ exitCode: 3, signal: null });
    await closed;
    const outs = got.filter((f) => f.type === T.STDOUT);
    assert.ok(outs.every((f) => f.payload.length <= 1024 * 1024), 'every frame within the limit');
    assert.is(outs.reduce((n, f) => n + f.payload.length, 0), big.length);
    assert.equal([...got[got.length - 1]!.payload], [0, 3]);
  } finally {
    cleanup();
  }
});

test('relay: a malformed SIGNAL frame is a protocol error: ERROR, then the connection closes', async () => {
  const { client, got, closed, warnings, fake, cleanup } = await linked();
  try {
    client.write(frame(T.SIGNAL, Buffer.from([1, 2])));
    await closed;
    assert.equal(got.map((f) => f.type), [T.ERROR]);
    assert.match(got[0]!.payload.toString(), /SIGNAL: payload of 2 bytes, expected 1/);
    assert.match(warnings[0]!, /holder protocol/);
    fake.exit({ exitCode: 0, signal: null });
  } finally {
    cleanup();
  }
});

/** Connects, sends frames, collects what comes back until the daemon closes. */
function converse(path: string, frames: Buffer[]): Promise<Array<{ type: number; payload: string }>> {
  return new Promise((resolve, reject) => {
    const got: Array<{ type: number; payload: string }> = [];
    const s = createConnection(path, () => { for (const f of frames) s.write(f); });
    s.on('data', frameParser((type, payload) => got.push({ type, payload: payload.toString() })));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    setTimeout(() => { s.destroy(); reject(new Error('the daemon did not close the connection')); }, 5000).unref();
  });
}

test('daemon: 0600 socket; HELLO and REQUEST told apart; refusals name what is wrong; crash recovery; idle exit', async () => {
  const root = mkdtempSync(join(tmpdir(), 'vcrt-d-'));
  // What a daemon that crashed left: a running container whose holder has gone.
  writeRecord(root, {
    id: 'orphan', bundle: '/nonexistent', pod: 'orphan-pod', containerId: 'orphan', ownsPod: true, annotations: {},
    status: 'running', holderPid: 2 ** 22 + 3, createdAt: new Date().toISOString(),
  });
  const daemon = spawn(process.execPath, [BIN, '--root', root, 'daemon'], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'], env: { ...process.env, VIRTC_RUNTIME_IDLE_MS: '1500' } });
  try {
    await new Promise<void>((resolve, reject) => {
      daemon.stdio[3]!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
      daemon.once('exit', (c) => reject(new Error(`daemon exited ${c} before ready`)));
    });
    const sock = join(root, 'daemon.sock');
    assert.is(statSync(sock).mode & 0o777, 0o600);
    // The record of the crashed daemon's container is now stopped with the VM-gone status.
    assert.equal([readRecord(root, 'orphan')!.status, readRecord(root, 'orphan')!.exit], ['stopped', { kind: 'exited', value: 255 }]);
    const unknown = await converse(sock, [frame(T.HELLO, JSON.stringify({ id: 'nope', exec: null, tty: false, rows: 0, cols: 0 }))]);
    assert.equal(unknown.map((f) => f.type), [T.ERROR]);
    assert.match(unknown[0]!.payload, /container "nope" does not exist/);
    const bad = await converse(sock, [frame(T.HELLO, JSON.stringify({ id: 'x', rows: -1 }))]);
    assert.match(bad[0]!.payload, /HELLO: rows: expected 0-65535, got -1/);
    const stoppedInit = await converse(sock, [frame(T.HELLO, JSON.stringify({ id: 'orphan', exec: null, tty: false, rows: 0, cols: 0 }))]);
    assert.match(stoppedInit[0]!.payload, /container "orphan" is stopped/);
    const startReply = await converse(sock, [frame(100, JSON.stringify({ op: 'start', id: 'nope' }))]);
    assert.equal(startReply.map((f) => f.type), [101]);
    assert.equal(JSON.parse(startReply[0]!.payload), { ok: false, error: 'container "nope" does not exist' });
    const opReply = await converse(sock, [frame(100, JSON.stringify({ op: 'frobnicate' }))]);
    assert.match(JSON.parse(opReply[0]!.payload).error, /unknown request "frobnicate"/);
    // A connection that starts with anything else is closed without an answer.
    assert.equal(await converse(sock, [frame(T.STDIN, 'x')]), []);
    // The CLI against this daemon: state from the record, exit 1 and the daemon's words for a refusal.
    const state = spawnSync(process.execPath, [BIN, '--root', root, 'state', 'orphan'], { encoding: 'utf8' });
    assert.equal([state.status, JSON.parse(state.stdout).status], [0, 'stopped']);
    const start = spawnSync(process.execPath, [BIN, '--root', root, 'start', 'orphan'], { encoding: 'utf8' });
    assert.equal(start.status, 1);
    assert.match(start.stderr, /start: cannot start container "orphan": it is stopped, not created/);
    // delete works from the record (its pod is long gone), then the daemon leaves, socket removed.
    const del = spawnSync(process.execPath, [BIN, '--root', root, 'delete', 'orphan'], { encoding: 'utf8' });
    assert.equal([del.status, del.stderr], [0, '']);
    assert.is(readRecord(root, 'orphan'), null);
    const code = await new Promise<number | null>((resolve) => daemon.once('exit', resolve));
    assert.is(code, 0);
    assert.ok(!existsSync(sock), 'socket removed');
  } finally {
    daemon.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
