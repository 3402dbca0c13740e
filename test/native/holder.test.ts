// vc-holder (build/Release/vc-holder), virtc-runtime's stand-in for a container's process, driven by
// a fake daemon of the test's own (holder-wire.ts): hello/ack, the ready fd, stdio both ways with
// EOF and back-pressure, signals forwarded, the exit status (code, or death by the same signal),
// and what a broken or hostile daemon gets: exit 255 and a message, never a crash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  encode, exited, FakeDaemon, holderPath, killed, killHolders, rssKiB, startHolder, T, within, type DaemonConn, type RunningHolder,
} from './holder-wire.js';

let dir = '';
let daemon: FakeDaemon;
const RSS_LIMIT_KIB = 10 * 1024;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vc-holder-test-'));
  daemon = await FakeDaemon.start(dir);
});

test.after(() => {
  killHolders();
  daemon?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A holder for container c1, connected, hello taken and acked. */
async function acked(extra: string[] = []): Promise<{ h: RunningHolder; c: DaemonConn }> {
  const h = startHolder(['--socket', daemon.path, '--id', 'c1', ...extra]);
  const c = await daemon.accept();
  await c.hello();
  c.send(encode(T.ACK));
  return { h, c };
}

const usage = (args: string[]) => spawnSync(holderPath, args, { encoding: 'utf8' });

test('a wrong command line exits 125 with a message naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [[], /--socket: missing/],
    [['--socket', '/x'], /--id: missing/],
    [['--socket', '/x', '--id', 'c1', '--bogus', '1'], /unknown argument --bogus/],
    [['--socket'], /--socket needs a value/],
    [['--socket', '/x', '--socket', '/y', '--id', 'c'], /--socket given twice/],
    [['--socket', '/x', '--id', 'c1', '--ready-fd', 'three'], /--ready-fd three: expected a file descriptor number/],
    [['--socket', '/x', '--id', 'c1', '--ready-fd', '1'], /--ready-fd 1: must not be stdin, stdout or stderr/],
    [['--socket', '/x', '--id', 'c1', '--ready-fd', '987'], /--ready-fd 987: not an open file descriptor/],
    [['--socket', `/${'s'.repeat(120)}`, '--id', 'c1'], /--socket \/s+: longer than a Unix socket path may be \(107 bytes\)/],
    [['--socket', '/x', '--id', 'a b'], /--id a b: byte 0x20 is not printable ASCII/],
    [['--socket', '/x', '--id', 'c1', '--exec', ''], /--exec: empty/],
  ];
  for (const [args, message] of cases) {
    const r = usage(args);
    assert.is(r.status, 125, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /usage: vc-holder --socket PATH --id CONTAINER_ID/);
  }
});

test('a daemon socket that cannot be reached: exit 255 naming the path', () => {
  const path = join(dir, 'nobody-listens.sock');
  const r = usage(['--socket', path, '--id', 'c1']);
  assert.is(r.status, 255, r.stderr);
  assert.match(r.stderr, `vc-holder: cannot connect to the daemon at ${path}: No such file or directory`);
});

test('hello names the container, the exec and no terminal', async () => {
  for (const [extra, exec] of [[[], null], [['--exec', 'e-7'], 'e-7']] as const) {
    const h = startHolder(['--socket', daemon.path, '--id', 'c1', ...extra]);
    const c = await daemon.accept();
    assert.equal(await c.hello(), { id: 'c1', exec, tty: false, rows: 0, cols: 0 });
    c.send(encode(T.ACK));
    c.send(exited(0));
    assert.equal(await within('exit', h.exit), { code: 0, signal: null });
  }
});

test('the ready fd gets one byte and closes only after ACK', async () => {
  const h = startHolder(['--socket', daemon.path, '--id', 'c1', '--ready-fd', '3'], ['pipe', 'pipe', 'pipe', 'pipe']);
  const ready = h.proc.stdio[3] as Readable;
  const got: Buffer[] = [];
  ready.on('data', (d: Buffer) => got.push(d));
  const ended = new Promise<void>((resolve) => ready.on('end', resolve));
  const c = await daemon.accept();
  await c.hello();
  await new Promise((r) => setTimeout(r, 200));
  assert.is(Buffer.concat(got).length, 0, 'nothing before ACK');
  c.send(encode(T.ACK));
  await within('ready fd closed', ended);
  assert.is(Buffer.concat(got).length, 1);
  c.send(exited(0));
  await within('exit', h.exit);
});

test('stdin arrives as STDIN frames, then STDIN_EOF', async () => {
  const { h, c } = await acked();
  h.proc.stdin!.write('hello ');
  h.proc.stdin!.end('world\n');
  assert.is((await c.stdinUntilEof()).toString(), 'hello world\n');
  c.send(exited(0));
  assert.equal(await within('exit', h.exit), { code: 0, signal: null });
});

test('STDOUT and STDERR frames land on fds 1 and 2, all before the exit', async () => {
  const { h, c } = await acked();
  c.send(Buffer.concat([encode(T.STDOUT, 'out 1\n'), encode(T.STDERR, 'err 1\n'), encode(T.STDOUT, 'out 2\n'),
    encode(T.STDOUT, ''), exited(0)]));
  assert.equal(await within('exit', h.exit), { code: 0, signal: null });
  assert.is(h.stdout().toString(), 'out 1\nout 2\n');
  assert.is(h.stderr(), 'err 1\n');
});

test('EXIT with a code: the holder exits with it', async () => {
  for (const code of [7, 0, 255]) {
    const { h, c } = await acked();
    c.send(exited(code));
    assert.equal(await within(`exit ${code}`, h.exit), { code, signal: null });
  }
});

test('EXIT by a signal: the holder dies by the same signal', async () => {
  for (const [signo, name] of [[9, 'SIGKILL'], [15, 'SIGTERM'], [3, 'SIGQUIT'], [10, 'SIGUSR1']] as const) {
    const { h, c } = await acked();
    c.send(killed(signo));
    assert.equal(await within(name, h.exit), { code: null, signal: name });
  }
});

test('EXIT by a signal whose default does not end a process: 128 + the signal', async () => {
  const { h, c } = await acked();
  c.send(killed(19));  // SIGSTOP: the holder must not stop itself
  assert.equal(await within('exit', h.exit), { code: 128 + 19, signal: null });
});

test('signals sent to the holder arrive as SIGNAL frames; the holder stays', async () => {
  const { h, c } = await acked();
  await new Promise((r) => setTimeout(r, 50));  // ACK handled
  for (const [name, signo] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGHUP', 1], ['SIGUSR2', 12], ['SIGCONT', 18]] as const) {
    h.proc.kill(name);
    assert.equal([...(await c.take(T.SIGNAL)).payload], [signo], name);
  }
  // Not forwarded: SIGWINCH without a terminal, SIGCHLD, SIGPIPE.
  h.proc.kill('SIGWINCH');
  h.proc.kill('SIGCHLD');
  h.proc.kill('SIGPIPE');
  h.proc.kill('SIGUSR1');
  assert.equal([...(await c.take(T.SIGNAL)).payload], [10]);
  assert.is(c.frames.filter((f) => f.type === T.SIGNAL || f.type === T.RESIZE).length, 0);
  assert.is(h.proc.exitCode, null);
  c.send(exited(0));
  assert.equal(await within('exit', h.exit), { code: 0, signal: null });
});

test('the daemon connection dropped before EXIT: 255 with a message', async () => {
  const { h, c } = await acked();
  c.send(encode(T.STDOUT, 'last words\n'));
  await new Promise((r) => setTimeout(r, 50));
  c.sock.destroy();
  assert.equal(await within('exit', h.exit), { code: 255, signal: null });
  assert.match(h.stderr(), /vc-holder: lost the connection to the daemon: it closed before the container's exit status/);
  assert.is(h.stdout().toString(), 'last words\n');
});

test('ERROR instead of ACK: the message on stderr, exit 255, no ready byte', async () => {
  const h = startHolder(['--socket', daemon.path, '--id', 'c1', '--ready-fd', '3'], ['pipe', 'pipe', 'pipe', 'pipe']);
  const ready = h.proc.stdio[3] as Readable;
  const got: Buffer[] = [];
  ready.on('data', (d: Buffer) => got.push(d));
  const c = await daemon.accept();
  await c.hello();
  c.send(encode(T.ERROR, 'container c1: no such container\x1b[2J'));
  assert.equal(await within('exit', h.exit), { code: 255, signal: null });
  assert.match(h.stderr(), 'vc-holder: container c1: no such container?[2J\n');
  assert.is(Buffer.concat(got).length, 0);
});

test('a later ERROR also ends the holder with 255', async () => {
  const { h, c } = await acked();
  c.send(encode(T.ERROR, 'the pod is gone'));
  assert.equal(await within('exit', h.exit), { code: 255, signal: null });
  assert.match(h.stderr(), 'vc-holder: the pod is gone\n');
});

test('hostile frames: exit 255 naming the problem, never a crash', async () => {
  const huge = Buffer.from([T.STDOUT, 0xff, 0xff, 0xff, 0xff]);
  const cases: [string, Buffer, boolean, RegExp][] = [
    ['length 0xffffffff', huge, true, /frame type 5: length 4294967295 exceeds the 1048576-byte limit/],
    ['length 1 MiB + 1', Buffer.from([T.STDERR, 0x00, 0x10, 0x00, 0x01]), true, /length 1048577 exceeds/],
    ['unknown type', encode(77, 'x'), true, /unknown frame type 77/],
    ['type 0', encode(0), true, /unknown frame type 0/],
    ['a frame the holder sends', encode(T.STDIN, 'x'), true, /frame type 3 is one the holder sends/],
    ['EXIT of 1 byte', encode(T.EXIT, Buffer.from([0])), true, /EXIT: length 1, expected 2/],
    ['EXIT kind 2', encode(T.EXIT, Buffer.from([2, 0])), true, /EXIT: unknown kind 2/],
    ['EXIT signal 0', encode(T.EXIT, Buffer.from([1, 0])), true, /EXIT: signal 0 out of range/],
    ['EXIT signal 200', encode(T.EXIT, Buffer.from([1, 200])), true, /EXIT: signal 200 out of range/],
    ['ACK with a payload', encode(T.ACK, 'x'), false, /ACK: length 1, expected 0/],
    ['a second ACK', encode(T.ACK), true, /unexpected frame type 2/],
    ['STDOUT before ACK', encode(T.STDOUT, 'x'), false, /frame type 5 before ACK/],
  ];
  for (const [name, frame, ackFirst, message] of cases) {
    const h = startHolder(['--socket', daemon.path, '--id', 'c1']);
    const c = await daemon.accept();
    await c.hello();
    c.send(ackFirst ? Buffer.concat([encode(T.ACK), frame]) : frame);
    const exit = await within(name, h.exit);
    assert.equal(exit, { code: 255, signal: null }, `${name}: ${h.stderr()}`);
    assert.match(h.stderr(), /vc-holder: protocol error from the daemon: /, name);
    assert.match(h.stderr(), message, name);
  }
});

test('back-pressure: a daemon that does not read holds stdin, memory stays small', async () => {
  const { h, c } = await acked();
  c.sock.pause();
  const total = 24 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let written = 0; written < total; written += chunk.length) h.proc.stdin!.write(chunk);
  h.proc.stdin!.end();
  await new Promise((r) => setTimeout(r, 500));
  // The holder keeps at most ~1 MiB for the daemon; the pipe and the socket hold a little more.
  const queued = h.proc.stdin!.writableLength;
  const rss = rssKiB(h.proc.pid!);
  console.log(`  holder RSS with the daemon not reading: ${rss} KiB; ${queued} bytes of stdin still waiting`);
  assert.ok(queued >= total - 4 * 1024 * 1024, `only ${queued} bytes left unread by the holder`);
  assert.ok(rss <= RSS_LIMIT_KIB, `${rss} KiB`);
  c.sock.resume();
  const got = await c.stdinUntilEof(30000);
  assert.is(got.length, total);
  assert.ok(got.every((b) => b === 0x61));
  c.send(exited(0));
  assert.equal(await within('exit', h.exit), { code: 0, signal: null });
});

test('back-pressure: output nobody reads stops the holder reading the daemon; order kept', async () => {
  const { h, c } = await acked();
  h.proc.stdout!.pause();
  const frames = 256;
  const size = 64 * 1024;
  for (let i = 0; i < frames; i++) c.sock.write(encode(T.STDOUT, Buffer.alloc(size, i & 0xff)));
  c.send(exited(0));
  await new Promise((r) => setTimeout(r, 500));
  const queued = c.sock.writableLength;
  const rss = rssKiB(h.proc.pid!);
  console.log(`  holder RSS with nobody reading its stdout: ${rss} KiB; ${queued} bytes still at the daemon`);
  assert.ok(queued >= frames * size - 4 * 1024 * 1024, `only ${queued} bytes left unread by the holder`);
  assert.ok(rss <= RSS_LIMIT_KIB, `${rss} KiB`);
  assert.is(h.proc.exitCode, null, 'no exit before its output is out');
  h.proc.stdout!.resume();
  assert.equal(await within('exit', h.exit, 30000), { code: 0, signal: null });
  const out = h.stdout();
  assert.is(out.length, frames * size);
  for (let i = 0; i < frames; i++) assert.is(out[i * size], i & 0xff, `frame ${i} in place`);
});

test(`an idle holder's resident memory is at most ${RSS_LIMIT_KIB / 1024} MiB`, async () => {
  const { h, c } = await acked();
  c.send(encode(T.STDOUT, 'x'));
  await new Promise((r) => setTimeout(r, 100));
  const rss = rssKiB(h.proc.pid!);
  console.log(`  idle holder RSS: ${rss} KiB`);
  assert.ok(rss <= RSS_LIMIT_KIB, `${rss} KiB`);
  c.send(exited(0));
  await within('exit', h.exit);
});

test.run();
