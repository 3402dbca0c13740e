// End-to-end tests of the guest agent binary (build/Release/vc-agent) in its host test mode,
// `vc-agent --serve-unix PATH`: the real protocol over a Unix socket, without a VM. The frame
// codec (agent-wire.ts) is deliberately independent of src/agent/protocol.ts, so the two sides are
// checked against docs/agent-protocol.md rather than against each other.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentPath, Conn, encode, startAgent, T, text, type RunningAgent } from './agent-wire.js';

let dir = '';
let sockPath = '';
let agent: RunningAgent | undefined;

const hello = () => Conn.hello(sockPath);

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vc-agent-test-'));
  agent = await startAgent(dir);
  sockPath = agent.sockPath;
});

test.after(async () => {
  agent?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('--version prints the agent name', () => {
  const r = spawnSync(agentPath, ['--version'], { encoding: 'utf8' });
  assert.is(r.status, 0);
  assert.is(r.stdout, 'vc-agent 0.1.0\n');
});

test('hello must come first and checks the version', async () => {
  const c = await Conn.open(sockPath);
  assert.is((await c.errorCode('guest_info')).code, 'BAD_REQUEST');
  assert.is((await c.errorCode('hello', { version: 2 })).code, 'VERSION_MISMATCH');
  assert.is((await c.errorCode('hello', {})).code, 'BAD_REQUEST');
  assert.is((await c.errorCode('hello', { version: '1' })).code, 'BAD_REQUEST');
  assert.equal(await c.ok('hello', { version: 1 }), { version: 1, agent: 'vc-agent 0.1.0', epoch: 0, restorePending: false });
  c.close();
});

test('guest_info', async () => {
  const c = await hello();
  const r = await c.ok('guest_info');
  assert.type(r.kernelRelease, 'string');
  assert.ok(r.kernelRelease.length > 0);
  assert.ok(r.uptimeSec > 0);
  assert.ok(r.memTotalKiB > 0 && r.memAvailableKiB > 0 && r.memAvailableKiB <= r.memTotalKiB);
  assert.ok(Number.isInteger(r.cpus) && r.cpus >= 1);
  assert.is(r.agent, 'vc-agent 0.1.0');
  c.close();
});

test('exec with pipes: stdout, stderr, ends, exit code, wait', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
  assert.ok(r.process > 0 && r.pid > 0);
  const p = await c.finished(r.process);
  assert.is(text(p.stdout), 'out\n');
  assert.is(text(p.stderr), 'err\n');
  assert.ok(p.stdoutEnded && p.stderrEnded);
  assert.equal(p.exit, { exitCode: 3, signal: null });
  assert.is(p.order[p.order.length - 1], 'exit');
  // EXIT handed to the attached connection collects the status: the agent forgets the process.
  assert.is((await c.errorCode('wait', { process: r.process })).code, 'NOT_FOUND');
  c.close();
});

test('exec: env over the default PATH, cwd', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sh', '-c', 'echo "$FOO|$PATH"; pwd'], env: ['FOO=bar'], cwd: '/tmp' });
  const p = await c.finished(r.process);
  assert.is(text(p.stdout), 'bar|/usr/sbin:/usr/bin:/sbin:/bin\n/tmp\n');
  const r2 = await c.ok('exec', { argv: ['sh', '-c', 'echo $PATH'], env: ['PATH=/bin:/usr/bin'] });
  assert.is(text((await c.finished(r2.process)).stdout), '/bin:/usr/bin\n');
  c.close();
});

test('exec failures: EXEC_FAILED names the program and errno text', async () => {
  const c = await hello();
  let e = await c.errorCode('exec', { argv: ['/nonexistent/prog'] });
  assert.is(e.code, 'EXEC_FAILED');
  assert.match(e.message, '/nonexistent/prog');
  assert.match(e.message, 'No such file or directory');
  e = await c.errorCode('exec', { argv: ['no-such-program-vc'] });
  assert.is(e.code, 'EXEC_FAILED');
  assert.match(e.message, 'no-such-program-vc');
  e = await c.errorCode('exec', { argv: ['/etc/passwd'] });
  assert.is(e.code, 'EXEC_FAILED');
  assert.match(e.message, 'Permission denied');
  e = await c.errorCode('exec', { argv: ['true'], cwd: '/nonexistent-dir' });
  assert.is(e.code, 'EXEC_FAILED');
  assert.match(e.message, '/nonexistent-dir');
  c.close();
});

test('bad arguments get BAD_REQUEST naming the argument', async () => {
  const c = await hello();
  const cases: [Record<string, unknown>, string][] = [
    [{}, 'argv'],
    [{ argv: 'sh' }, 'argv'],
    [{ argv: [] }, 'argv'],
    [{ argv: ['sh', 1] }, 'argv[1]'],
    [{ argv: ['sh\u0000x'] }, 'argv[0]'],
    [{ argv: ['sh'], env: 'A=1' }, 'env'],
    [{ argv: ['sh'], env: ['NOEQUALS'] }, 'env[0]'],
    [{ argv: ['sh'], cwd: 5 }, 'cwd'],
    [{ argv: ['sh'], tty: 'yes' }, 'tty'],
    [{ argv: ['sh'], tty: true, rows: -1 }, 'rows'],
    [{ argv: ['sh'], tty: true, cols: 1.5 }, 'cols'],
  ];
  for (const [args, name] of cases) {
    const e = await c.errorCode('exec', args);
    assert.is(e.code, 'BAD_REQUEST', JSON.stringify(args));
    assert.ok(e.message.startsWith(name + ':'), `${JSON.stringify(args)} -> ${e.message}`);
  }
  assert.is((await c.errorCode('attach', {})).code, 'BAD_REQUEST');
  assert.is((await c.errorCode('attach', { process: 'x' })).code, 'BAD_REQUEST');
  assert.is((await c.errorCode('attach', { process: 999999 })).code, 'NOT_FOUND');
  assert.is((await c.errorCode('wait', { process: 999999 })).code, 'NOT_FOUND');
  assert.is((await c.errorCode('signal', { process: 999999, signal: 9 })).code, 'NOT_FOUND');
  assert.is((await c.errorCode('signal', { process: 1, signal: 'KILL' })).code, 'BAD_REQUEST');
  assert.is((await c.errorCode('resize', { process: 999999, rows: 1, cols: 1 })).code, 'NOT_FOUND');
  assert.is((await c.errorCode('no_such_op')).code, 'UNKNOWN_OP');
  // a request without op, and one whose op is not a string
  const id = 4242;
  const got = new Promise<any>((resolve) => c.waiting.set(id, resolve));
  c.send(encode(T.REQUEST, id, JSON.stringify({ nop: 1 })));
  assert.is((await got).error.code, 'BAD_REQUEST');
  assert.is((await c.errorCode(5 as unknown as string)).code, 'BAD_REQUEST');
  // the connection is still good
  assert.ok((await c.ok('guest_info')).cpus >= 1);
  c.close();
});

test('stdin passthrough with STDIN_ACK and close', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['cat'] });
  const p = c.proc(r.process);
  c.send(encode(T.STDIN, r.process, 'hello '));
  c.send(encode(T.STDIN, r.process, 'world\n'));
  await c.until(() => text(p.stdout) === 'hello world\n', 'echo from cat');
  await c.until(() => p.acked === 12, 'STDIN_ACK of 12 bytes');
  assert.is(p.exit, undefined);
  c.send(encode(T.STDIN, r.process)); // close stdin
  await c.finished(r.process);
  assert.equal(p.exit, { exitCode: 0, signal: null });
  assert.ok(p.stdoutEnded && p.stderrEnded);
  c.close();
});

test('stdin: 4 MiB through `wc -c` within the 256 KiB window', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['wc', '-c'] });
  const p = c.proc(r.process);
  const total = 4 << 20, chunk = 64 << 10, window = 256 << 10;
  let sent = 0;
  while (sent < total) {
    await c.until(() => sent - p.acked + chunk <= window, 'stdin window');
    c.send(encode(T.STDIN, r.process, Buffer.alloc(chunk, 0x61)));
    sent += chunk;
  }
  c.send(encode(T.STDIN, r.process));
  await c.finished(r.process);
  assert.is(text(p.stdout).trim(), String(total));
  assert.is(p.acked, total);
  c.close();
});

test('stdout: 16 MiB arrive complete and in order', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sh', '-c', 'head -c 16777216 /dev/urandom | tee /dev/stderr | md5sum >&2'] });
  const p = await c.finished(r.process);
  assert.equal(p.exit, { exitCode: 0, signal: null });
  const data = Buffer.concat(p.stderr);
  const md5 = data.subarray(data.length - 36, data.length - 4).toString();
  const body = data.subarray(0, data.length - 36);
  assert.is(body.length, 16777216);
  const { createHash } = await import('node:crypto');
  assert.is(createHash('md5').update(body).digest('hex'), md5);
  c.close();
});

test('tty: one terminal for all stdio, size, resize, no STDERR', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sh', '-c', 'tty; stty size; read x; stty size; echo err >&2'], tty: true, rows: 24, cols: 80 });
  const p = c.proc(r.process);
  await c.until(() => text(p.stdout).includes('24 80'), 'initial size');
  assert.match(text(p.stdout), /^\/dev\/pts\/\d+\r\n24 80\r\n/);
  assert.equal(await c.ok('resize', { process: r.process, rows: 40, cols: 132 }), {});
  c.send(encode(T.STDIN, r.process, 'go\n'));
  await c.finished(r.process);
  const out = text(p.stdout);
  assert.match(out, '40 132\r\n');
  assert.match(out, 'err\r\n');
  assert.is(p.stderr.length, 0);
  assert.not.ok(p.stderrEnded, 'no STDERR end for a TTY');
  assert.ok(p.stdoutEnded);
  assert.equal(p.exit, { exitCode: 0, signal: null });
  // A process that is still there (one that exits at once may be gone by then: NOT_FOUND).
  const r2 = await c.ok('exec', { argv: ['cat'] });
  assert.is((await c.errorCode('resize', { process: r2.process, rows: 1, cols: 1 })).code, 'BAD_REQUEST');
  c.send(encode(T.STDIN, r2.process));
  await c.finished(r2.process);
  c.close();
});

test('tty: closing stdin sends EOF to a canonical-mode reader', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['cat'], tty: true });
  const p = c.proc(r.process);
  c.send(encode(T.STDIN, r.process, 'abc\n'));
  await c.until(() => text(p.stdout).includes('abc\r\nabc\r\n'), 'echo and output');
  c.send(encode(T.STDIN, r.process));
  await c.finished(r.process);
  assert.equal(p.exit, { exitCode: 0, signal: null });
  c.close();
});

test('signal: SIGKILL reported by name; wait before exit answers later', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sleep', '100'] });
  const waited = c.ok('wait', { process: r.process });
  assert.equal(await c.ok('signal', { process: r.process, signal: 9 }), {});
  assert.equal(await waited, { exitCode: null, signal: 'SIGKILL' });
  const p = c.proc(r.process);
  assert.equal(p.exit, { exitCode: null, signal: 'SIGKILL' }); // EXIT came before the wait answer
  // The shell blocks on stdin, and frames are handled in order: the wait is in before it exits.
  const r2 = await c.ok('exec', { argv: ['sh', '-c', 'read x; kill -TERM $$'] });
  const waited2 = c.ok('wait', { process: r2.process });
  c.send(encode(T.STDIN, r2.process, 'go\n'));
  assert.equal(await waited2, { exitCode: null, signal: 'SIGTERM' });
  c.close();
});

test('a background child holding the pipe does not delay EXIT', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sh', '-c', 'sleep 5 & echo started'] });
  const t0 = Date.now();
  const p = await c.finished(r.process);
  assert.ok(Date.now() - t0 < 3000, 'EXIT waited for the background child');
  assert.is(text(p.stdout), 'started\n');
  c.close();
});

test('detach on disconnect, buffered output, attach from another connection', async () => {
  const a = await hello();
  const r = await a.ok('exec', { argv: ['sh', '-c', 'read x; sleep 0.3; echo "got $x"; echo bye >&2; exit 7'] });
  a.send(encode(T.STDIN, r.process, 'line\n'));
  await a.until(() => a.proc(r.process).acked === 5, 'stdin written');
  a.close();
  await a.closed;
  await new Promise((res) => setTimeout(res, 800)); // the process finishes while detached
  assert.is(a.proc(r.process).stdout.length, 0);
  const b = await hello();
  assert.equal(await b.ok('attach', { process: r.process }), {});
  const p = await b.finished(r.process);
  assert.is(text(p.stdout), 'got line\n');
  assert.is(text(p.stderr), 'bye\n');
  assert.equal(p.exit, { exitCode: 7, signal: null });
  assert.is((await b.errorCode('attach', { process: r.process })).code, 'NOT_FOUND');
  b.close();
});

test('a wait sent before the exit is answered after EXIT, then the process is gone', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sh', '-c', 'read x; exit 4'] });
  const waited = c.ok('wait', { process: r.process });
  c.send(encode(T.STDIN, r.process, 'go\n')); // frames are handled in order: the wait is in first
  assert.equal(await waited, { exitCode: 4, signal: null });
  assert.equal(c.proc(r.process).exit, { exitCode: 4, signal: null });
  assert.is((await c.errorCode('wait', { process: r.process })).code, 'NOT_FOUND');
  c.close();
});

test('several connections at once; process ids are unique', async () => {
  const conns = await Promise.all([hello(), hello(), hello()]);
  const results = await Promise.all(conns.map((c, i) => c.ok('exec', { argv: ['echo', `conn${i}`] })));
  const ids = new Set(results.map((r) => r.process));
  assert.is(ids.size, 3);
  for (let i = 0; i < 3; i++) {
    const p = await conns[i]!.finished(results[i]!.process);
    assert.is(text(p.stdout), `conn${i}\n`);
  }
  // another connection's process: attach moves it; STDIN from others is ignored
  for (const c of conns) c.close();
});

// Each of these must make the agent drop the connection; the agent itself must live on.
const malformed: [string, Buffer][] = [
  ['length below 8', Buffer.from([0, 0, 0, 7, 1, 0, 0, 0, 0, 0, 0])],
  ['length above 1 MiB + 8', Buffer.from([0, 0x10, 0, 9, 1, 0, 0, 0])],
  ['length 0xffffffff', Buffer.from([0xff, 0xff, 0xff, 0xff])],
  ['unknown type', encode(9, 1, '{}')],
  ['type 0', encode(0, 1, '{}')],
  ['non-zero flags', (() => { const f = encode(T.REQUEST, 1, '{"op":"hello","version":1}'); f[5] = 1; return f; })()],
  ['non-zero reserved', (() => { const f = encode(T.REQUEST, 1, '{"op":"hello","version":1}'); f[7] = 1; return f; })()],
  ['bad JSON', encode(T.REQUEST, 1, '{"op":')],
  ['JSON array', encode(T.REQUEST, 1, '[1,2]')],
  ['JSON trailing garbage', encode(T.REQUEST, 1, '{"op":"hello"} x')],
  ['invalid UTF-8', encode(T.REQUEST, 1, Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))],
  ['lone surrogate escape', encode(T.REQUEST, 1, '{"op":"\\ud800"}')],
  ['duplicate key', encode(T.REQUEST, 1, '{"op":"hello","op":"exec"}')],
  ['deep nesting', encode(T.REQUEST, 1, '{"a":' + '['.repeat(100000) + ']'.repeat(100000) + '}')],
  ['empty payload request', encode(T.REQUEST, 1)],
  ['host sends RESPONSE', encode(T.RESPONSE, 1, '{}')],
  ['host sends STDOUT', encode(T.STDOUT, 1, 'x')],
];
for (const [name, bytes] of malformed) {
  test(`malformed input drops the connection: ${name}`, async () => {
    const c = await Conn.open(sockPath);
    c.send(encode(T.REQUEST, 77, JSON.stringify({ op: 'hello', version: 1 })));
    // the 1 MiB+9 length is rejected from its header alone, without waiting for the payload
    c.send(bytes);
    await Promise.race([c.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('not dropped')), 5000))]);
    assert.ok(c.notices.length === 1 && c.notices[0].error.code === 'BAD_REQUEST', JSON.stringify(c.notices));
    const d = await hello();
    d.close();
  });
}

test('stdin beyond the window by more than 1 MiB drops the connection', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sleep', '100'] }); // never reads stdin
  for (let i = 0; i < 24; i++) c.send(encode(T.STDIN, r.process, Buffer.alloc(64 << 10)));
  await c.closed;
  assert.match(c.notices[0]?.error?.message ?? '', 'window');
  const d = await hello();
  await d.ok('signal', { process: r.process, signal: 9 });
  assert.equal(await d.ok('wait', { process: r.process }), { exitCode: null, signal: 'SIGKILL' });
  d.close();
});

test('random garbage never kills the agent', async () => {
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed; };
  for (let i = 0; i < 200; i++) {
    const c = await Conn.open(sockPath);
    const n = rnd() % 64;
    const junk = Buffer.alloc(n);
    for (let k = 0; k < n; k++) junk[k] = rnd() & 0xff;
    // half of the cases: a valid header followed by random payload
    c.send(i % 2 ? encode(T.REQUEST, 1, junk) : junk);
    c.sock.end();
    await c.closed;
  }
  const d = await hello();
  assert.ok((await d.ok('guest_info')).cpus >= 1);
  d.close();
});

test('shutdown answers, then the agent exits 0', async () => {
  const c = await hello();
  const r = await c.ok('exec', { argv: ['sleep', '100'] });
  assert.ok(r.process > 0);
  assert.equal(await c.ok('shutdown'), {});
  assert.is(await agent!.exited, 0);
  assert.not.ok(existsSync(sockPath), 'socket removed');
  // killed with the agent (briefly a zombie until its new parent reaps it)
  const gone = () => { try { process.kill(r.pid, 0); return false; } catch { return true; } };
  for (let i = 0; i < 100 && !gone(); i++) await new Promise((res) => setTimeout(res, 20));
  assert.ok(gone(), 'processes are killed');
});

test.run();
