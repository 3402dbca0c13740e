// vc-holder --console-socket: the holder opens a pty, sends the master over the console socket with
// SCM_RIGHTS (as runc does for conmon) and relays the slave. Node cannot receive a passed fd, so the
// engine's side is a small python3 helper (socket.recv_fds) that holds the master and does what the
// test tells it, one command a line: write bytes, read bytes, set the window size.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encode, exited, FakeDaemon, killHolders, rssKiB, startHolder, T, within } from './holder-wire.js';

const ENGINE = String.raw`
import fcntl, json, os, select, socket, struct, sys, termios
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(1)
print('listening', flush=True)
conn, _ = listener.accept()
msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
master = fds[0]
print(json.dumps({'name': msg.decode(errors='replace'), 'fds': len(fds), 'isatty': os.isatty(master)}), flush=True)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == 'winsz':
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack('HHHH', int(args[0]), int(args[1]), 0, 0))
        print('ok', flush=True)
    elif cmd == 'write':
        os.write(master, bytes.fromhex(args[0]))
        print('ok', flush=True)
    elif cmd == 'read':
        want, got = int(args[0]), b''
        while len(got) < want and select.select([master], [], [], 5)[0]:
            got += os.read(master, want - len(got))
        print(got.hex(), flush=True)
    elif cmd == 'quiet':
        # nothing readable within the given milliseconds (no echo, say)
        print('quiet' if not select.select([master], [], [], int(args[0]) / 1000)[0] else os.read(master, 4096).hex(), flush=True)
    elif cmd == 'close':
        os.close(master)
        print('ok', flush=True)
`;

let dir = '';
let daemon: FakeDaemon;
const python = spawnSync('python3', ['-c', 'import socket; assert hasattr(socket, "recv_fds")']);
const pythonProblem = python.error ? `python3 cannot run (${python.error.message})`
  : python.status !== 0 ? 'python3 has no socket.recv_fds (needs 3.9 or newer)' : null;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vc-holder-console-'));
  writeFileSync(join(dir, 'engine.py'), ENGINE);
  daemon = await FakeDaemon.start(dir);
});

test.after(() => {
  killHolders();
  for (const proc of engines) proc.kill('SIGKILL');
  daemon?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Killed in test.after: a failed assertion would leave them keeping this process alive.
const engines = new Set<ChildProcess>();

/** The python engine: lines out, commands in. */
class Engine {
  private lines: string[] = [];
  readonly proc: ChildProcess;
  constructor(socketPath: string) {
    this.proc = spawn('python3', ['-u', join(dir, 'engine.py'), socketPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.lines.push(l));
    engines.add(this.proc);
  }
  async line(ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    while (this.lines.length === 0) {
      if (Date.now() > deadline) throw new Error(`the engine helper said nothing within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.lines.shift()!;
  }
  async do(command: string): Promise<string> {
    this.proc.stdin!.write(`${command}\n`);
    return this.line();
  }
}

test('--console-socket: the master goes to the engine; the slave is relayed raw; resizes arrive', async () => {
  if (pythonProblem) { console.log(`  holder console test cannot run here: ${pythonProblem}`); return; }
  const consoleSocket = join(dir, 'console.sock');
  const engine = new Engine(consoleSocket);
  assert.is(await engine.line(), 'listening');

  const h = startHolder(['--socket', daemon.path, '--id', 'c1', '--console-socket', consoleSocket]);
  const received = JSON.parse(await engine.line());
  assert.equal(received.fds, 1, 'one fd with SCM_RIGHTS');
  assert.ok(received.isatty, 'the fd is a terminal');
  assert.match(received.name, /^\/dev\/pts\/\d+\0$/, 'the message names the terminal, NUL-terminated');

  const c = await daemon.accept();
  assert.equal(await c.hello(), { id: 'c1', exec: null, tty: true, rows: 0, cols: 0 });
  c.send(encode(T.ACK));
  // One RESIZE right after ACK, with the size the terminal has now.
  assert.equal([...(await c.take(T.RESIZE)).payload], [0, 0, 0, 0]);

  // The engine resizes the master: SIGWINCH reaches the holder, which reads the size and says so.
  assert.is(await engine.do('winsz 40 132'), 'ok');
  assert.equal([...(await c.take(T.RESIZE)).payload], [0, 40, 0, 132]);
  assert.is(c.frames.filter((f) => f.type === T.SIGNAL).length, 0, 'SIGWINCH is not forwarded as a signal');

  // Typed bytes go out unchanged (raw: no CR→NL, no signals from ^C) and are not echoed.
  assert.is(await engine.do(`write ${Buffer.from('ls\r\x03').toString('hex')}`), 'ok');
  const typed: Buffer[] = [];
  while (Buffer.concat(typed).length < 4) typed.push((await c.take(T.STDIN)).payload);
  assert.is(Buffer.concat(typed).toString(), 'ls\r\x03');
  assert.is(await engine.do('quiet 200'), 'quiet', 'no echo');

  // Output (STDOUT, and STDERR too, since a terminal has one stream) reaches the master unchanged.
  c.send(encode(T.STDOUT, 'out\n'));
  c.send(encode(T.STDERR, 'err\n'));
  assert.is(Buffer.from(await engine.do('read 8'), 'hex').toString(), 'out\nerr\n');
  assert.is(h.stdout().length, 0, 'nothing on the holder fd 1');

  const rss = rssKiB(h.proc.pid!);
  console.log(`  holder RSS with a terminal: ${rss} KiB`);
  assert.ok(rss <= 10 * 1024, `${rss} KiB`);

  // The engine closing the master ends the container's stdin.
  assert.is(await engine.do('close'), 'ok');
  await c.take(T.STDIN_EOF);
  c.send(exited(3));
  assert.equal(await within('exit', h.exit), { code: 3, signal: null });
  engine.proc.kill();
});

test('--console-socket that nobody listens on: exit 255 naming it', async () => {
  const path = join(dir, 'nobody.sock');
  const h = startHolder(['--socket', daemon.path, '--id', 'c1', '--console-socket', path]);
  assert.equal(await within('exit', h.exit), { code: 255, signal: null });
  assert.match(h.stderr(), `vc-holder: --console-socket ${path}: cannot connect: No such file or directory`);
});

test.run();
