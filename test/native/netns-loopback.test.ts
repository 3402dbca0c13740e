// The loopback forwarder's pieces in network namespaces this file makes (traffic only inside
// them): the addon's listenInNetns (a listener that is in the namespace, not ours) and
// originalDestination (the port a REDIRECTed connection was sent to), and forwardNetnsLoopback's
// rule (one, replaced by a later forwarder, removed on close) and its reset of a connection it
// cannot forward (here: no such pod). The forwarding into a VM is test/integration/cri-port-forward.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../../src/native.js';
import { forwardNetnsLoopback, LOOPBACK_RULE_COMMENT } from '../../src/api/netns-loopback-forward.js';
import { VcError } from '../../src/errors.js';
import { makeNetnsFile, removeNetnsFile } from '../helpers/network.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('vc-nslo');
const problem = process.getuid?.() !== 0 ? 'needs root (network namespaces, iptables)'
  : spawnSync('iptables', ['--version']).error ? 'iptables is not installed'
  : spawnSync('unshare', ['--net', 'true']).status !== 0 ? 'unshare --net fails here' : null;

const inNs = (ns: string, argv: string[]) => execFileSync('nsenter', [`--net=${ns}`, '--', ...argv], { encoding: 'utf8' });
const ourRules = (ns: string) => inNs(ns, ['iptables', '-t', 'nat', '-S', 'OUTPUT']).split('\n').filter((l) => l.includes(LOOPBACK_RULE_COMMENT));

/** Connects to 127.0.0.1:port from inside `ns`; what the peer sent, or the error code it ended with. */
function connectInside(ns: string, port: number): Promise<string> {
  const script = `const s = require('net').connect(${port}, '127.0.0.1'); let got = '';
    s.on('data', (d) => { got += d; }); s.on('end', () => { console.log('data:' + got); s.end(); });
    s.on('error', (e) => console.log('error:' + e.code));`;
  return new Promise((resolve) => {
    const child = spawn('nsenter', [`--net=${ns}`, '--', process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('close', () => resolve(out.trim()));
  });
}

function serve(fd: number, onConnection: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once('error', reject);
    server.listen({ fd }, () => resolve(server));
  });
}

const fdOf = (socket: Socket) => (socket as unknown as { _handle: { fd: number } })._handle.fd;

if (problem) {
  test('netns loopback: skipped', () => { console.log(`\nSKIP netns-loopback: ${problem}`); });
} else {
  const ns = makeNetnsFile(join(dir.path, 'ns'));
  test.after(() => { removeNetnsFile(ns); dir.remove(); });

  test('listenInNetns listens on 127.0.0.1 inside the namespace; originalDestination gives the REDIRECTed port', async () => {
    const { fd, port } = native().listenInNetns(ns);
    assert.ok(port > 0 && fd > 2, `fd ${fd} port ${port}`);
    assert.ok(inNs(ns, ['ss', '-Hltn']).includes(`127.0.0.1:${port}`), 'listed in the namespace');
    const seen: Array<{ address: string; port: number } | string> = [];
    const server = await serve(fd, (socket) => {
      try { seen.push(native().originalDestination(fdOf(socket))); } catch (err) { seen.push((err as Error).message); }
      socket.end('hi');
    });
    try {
      // Straight to the listener: not NATed, so there is no original destination.
      assert.equal(await connectInside(ns, port), 'data:hi');
      assert.match(String(seen[0]), /^getsockopt\(SO_ORIGINAL_DST\) on fd \d+: No such file or directory$/);
      inNs(ns, ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', '127.0.0.1', '!', '--dport', String(port), '-j', 'REDIRECT', '--to-ports', String(port)]);
      assert.equal(await connectInside(ns, 5555), 'data:hi');
      assert.equal(seen[1], { address: '127.0.0.1', port: 5555 });
    } finally {
      server.close();
      inNs(ns, ['iptables', '-t', 'nat', '-F', 'OUTPUT']);
    }
  });

  test('listenInNetns and originalDestination: errors name the path, the step and the errno text', () => {
    const err = (f: () => unknown) => { try { f(); return null; } catch (e) { return e as Error & { errno?: number }; } };
    const missing = err(() => native().listenInNetns(join(dir.path, 'none')));
    assert.equal([missing?.message, missing?.errno], [`cannot open network namespace ${join(dir.path, 'none')}: No such file or directory`, 2]);
    const notNs = err(() => native().listenInNetns('/etc/hostname'));
    assert.equal([notNs?.message, notNs?.errno], ['setns in network namespace /etc/hostname (not a network namespace file?): Invalid argument', 22]);
    assert.match(err(() => native().originalDestination(-1))?.message ?? '', /on fd -1: Bad file descriptor/);
    assert.instance(err(() => (native().listenInNetns as (x: unknown) => unknown)(3)), TypeError);
  });

  test('forwardNetnsLoopback: one rule, replaced by a later forwarder, gone on close; an unforwardable connection is reset', async () => {
    const errors: Array<[string, number]> = [];
    const first = await forwardNetnsLoopback('no-such-pod', { netns: ns, root: dir.path, onConnectionError: (e, port) => errors.push([(e as VcError).code, port]) });
    assert.equal(ourRules(ns).length, 1);
    assert.match(ourRules(ns)[0]!, new RegExp(`! --dport ${first.port} .*--to-ports ${first.port}$`));
    assert.equal(await connectInside(ns, 7777), 'error:ECONNRESET');
    assert.equal(errors, [['POD_NOT_FOUND', 7777]], 'the original port went to forwardPort');
    const second = await forwardNetnsLoopback('no-such-pod', { netns: ns, root: dir.path });
    assert.equal(ourRules(ns).length, 1, 'the earlier rule was replaced');
    assert.match(ourRules(ns)[0]!, new RegExp(`--to-ports ${second.port}$`));
    await first.close();
    assert.equal(ourRules(ns).length, 1, "closing the first leaves the second's rule");
    await second.close();
    assert.equal(ourRules(ns), []);
    assert.not.ok(inNs(ns, ['ss', '-Hltn']).includes(`127.0.0.1:${second.port}`), 'the listener is closed');
  });

  test('forwardNetnsLoopback: bad netns paths, iptables missing; close after the namespace is gone', async () => {
    const code = (p: Promise<unknown>) => p.then(() => 'resolved', (e: VcError) => `${e.code}: ${e.message}`);
    assert.match(await code(forwardNetnsLoopback('p', { netns: 'relative/ns' })), /^INVALID_CONFIG: netns: expected the absolute path/);
    assert.match(await code(forwardNetnsLoopback('p', { netns: '/etc/hostname' })), /^NETWORK_FAILED: netns: \/etc\/hostname is not a network namespace/);
    // A PATH with nsenter but no iptables: the error names the program and its package.
    const bin = join(dir.path, 'bin');
    mkdirSync(bin);
    symlinkSync(execFileSync('sh', ['-c', 'command -v nsenter'], { encoding: 'utf8' }).trim(), join(bin, 'nsenter'));
    const path = process.env.PATH;
    process.env.PATH = bin;
    try {
      assert.match(await code(forwardNetnsLoopback('p', { netns: ns })), /^NETWORK_UNAVAILABLE: iptables not found in PATH \(install iptables\)/);
    } finally {
      process.env.PATH = path;
    }
    const other = makeNetnsFile(join(dir.path, 'other'));
    const f = await forwardNetnsLoopback('no-such-pod', { netns: other, root: dir.path });
    removeNetnsFile(other);
    await f.close();
  });
}

test.run();
