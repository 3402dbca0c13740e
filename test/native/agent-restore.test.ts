// The guest agent's side of a snapshot restore (docs/snapshots.md, "How the guest agent notices a
// restore"), in its host test mode with `--restore-signal unix`: a Unix connection reset by its
// host (closed with answers unread, which Linux reports to the agent as ECONNRESET) stands for the
// vsock transport reset. Checked: a cold agent is epoch 0 and refuses `restored`; after a reset it
// answers only hello and restored (RESTORE_PENDING for the rest) until a valid `restored` — every
// argument checked by name, a time without a clock jump refused — then the new hostname (in the
// agent's own UTS namespace, the host's untouched) and machine id are what it keeps, and
// hello/guest_info report the epoch; a NIC with a `macs` entry's old MAC (a veth in the agent's own
// network namespace) gets the new one. In the VM the same code credits the seed with RNDADDENTROPY,
// reads /dev/hwrng and sets the clock; the nested test (test/nested/kvm-template.test.ts) covers that.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { isRoot, runOrSkip, stopAgent } from './agent-container-rig.js';
import { Conn, encode, startAgent, T, text, type RunningAgent } from './agent-wire.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skipReason = !isRoot ? 'the agent\'s own UTS, mount and network namespaces need root'
  : !has('unshare') || !has('nsenter') || !has('ip') ? 'needs unshare, nsenter and ip (util-linux, iproute2)' : '';

let dir = '';
let runDir = '';
let agent: RunningAgent;

const SEED = Buffer.alloc(32, 7).toString('base64');
const MACHINE_ID = '0123456789abcdef0123456789abcdef';

function restoredArgs(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const later = Math.floor(Date.now() / 1000) + 3600; // the host's clock, ahead of the snapshot's
  return { epoch: 7, time: { sec: later, nsec: 5 }, hostname: 'restored-1', machineId: MACHINE_ID, seed: SEED, ...overrides };
}

/**
 * What a restore does to the agent's host connection: it breaks with ECONNRESET. Here: the host
 * says hello and leaves the answer unread in its socket when it closes.
 */
async function resetConnection(): Promise<void> {
  const before = agent.stderr().split('connection reset').length;
  // With `onread`, pause() stops reading from the socket itself (readStop), not just the stream.
  const sock = createConnection({ path: agent.sockPath, onread: { buffer: Buffer.alloc(65536), callback: () => true } });
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  sock.pause(); // nothing is read from here on: the answer stays queued in the socket
  sock.write(encode(T.REQUEST, 1, JSON.stringify({ op: 'hello', version: 1 })));
  await new Promise((r) => setTimeout(r, 200));
  sock.destroy();
  const deadline = Date.now() + 5000;
  while (agent.stderr().split('connection reset').length === before) {
    if (Date.now() > deadline) throw new Error(`the agent did not see the reset: ${agent.stderr()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Runs a command in the agent's network namespace; returns stdout, fails the test on error. */
function ns(...argv: string[]): string {
  const r = spawnSync('nsenter', ['-t', String(agent.proc.pid), '-n', ...argv], { encoding: 'utf8' });
  assert.is(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function run(c: Conn, argv: string[]): Promise<string> {
  const r = await c.ok('exec', { argv });
  const p = await c.finished(r.process);
  assert.equal(p.exit, { exitCode: 0, signal: null }, `${argv.join(' ')}: ${text(p.stderr)}`);
  return text(p.stdout);
}

runOrSkip('agent restore', skipReason, () => {
  test.before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vc-agent-restore-'));
    runDir = join(dir, 'run');
    // A network namespace of its own too: `macs` goes through netlink, never to the host's links.
    agent = await startAgent(dir, ['--run-dir', runDir, '--restore-signal', 'unix'], ['unshare', '-n', '--']);
  });
  test.after(async () => {
    if (agent) await stopAgent(agent);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a cold-booted agent is epoch 0, serves everything and refuses restored', async () => {
    const c = await Conn.hello(agent.sockPath); // checks epoch 0, restorePending false
    assert.is((await c.ok('guest_info')).epoch, 0);
    const e = await c.errorCode('restored', restoredArgs());
    assert.is(e.code, 'NOT_RESTORED');
    assert.match(e.message, 'no snapshot restore was seen');
    assert.is(await run(c, ['echo', 'hi']), 'hi\n');
    c.close();
  });

  test('a host connection closed in the ordinary way is no restore', async () => {
    const c = await Conn.hello(agent.sockPath);
    c.close();
    await c.closed;
    await new Promise((r) => setTimeout(r, 100));
    const d = await Conn.hello(agent.sockPath); // restorePending false
    d.close();
  });

  test('after a reset only hello and restored are served until restored is applied', async () => {
    const hostBefore = hostname();
    await resetConnection();
    const c = await Conn.open(agent.sockPath);
    assert.equal(await c.ok('hello', { version: 1 }), { version: 1, agent: 'vc-agent 0.1.0', epoch: 0, restorePending: true });
    for (const op of ['guest_info', 'exec', 'create_container', 'configure_network', 'no_such_op']) {
      const e = await c.errorCode(op, op === 'exec' ? { argv: ['true'] } : {});
      assert.is(e.code, 'RESTORE_PENDING', op);
      assert.match(e.message, `send \`restored\` before ${op}`);
    }
    // Each argument is checked by name, and a refused restored leaves the agent pending.
    const bad: [Record<string, unknown>, string][] = [
      [{ epoch: 0 }, 'epoch: expected an integer from 1 to 4294967295, got 0'],
      [{ epoch: undefined }, 'epoch: missing'],
      [{ time: { sec: 5 } }, 'time.nsec: missing'],
      [{ time: { sec: 1, nsec: 1e9 } }, 'time.nsec: expected an integer from 0 to 999999999, got 1000000000'],
      [{ time: 'now' }, 'time: expected an object, got "now"'],
      [{ hostname: '-bad' }, 'hostname: "-bad" is not a host name'],
      [{ hostname: 'x'.repeat(65) }, 'is not a host name'],
      [{ machineId: 'ABCDEF0123456789ABCDEF0123456789' }, 'machineId: "ABCDEF0123456789ABCDEF0123456789" is not 32 lowercase hex digits'],
      [{ machineId: '0'.repeat(32) }, 'not all zero'],
      [{ seed: Buffer.alloc(31).toString('base64') }, 'seed: 31 bytes, not 32'],
      [{ seed: 'not base64!' }, 'seed: not canonical padded base64'],
      [{ macs: [{ from: '02:00:00:00:00:01', to: 'nope' }] }, 'macs[0].to: "nope" is not a MAC address'],
      [{ macs: [{ from: '02:00:00:00:00:01', to: '02:00:00:00:00:02' }, { from: '02:00:00:00:00:01', to: '02:00:00:00:00:03' }] }, 'macs[1].from: "02:00:00:00:00:01" is listed twice'],
      // The host's clock must be ahead of the guest's: a snapshot's clock stood still.
      [{ time: { sec: Math.floor(Date.now() / 1000) - 5, nsec: 0 } }, 'no clock jump, so this is not a restored snapshot'],
    ];
    for (const [overrides, message] of bad) {
      const e = await c.errorCode('restored', restoredArgs(overrides));
      assert.is(e.code, 'BAD_REQUEST', JSON.stringify(overrides));
      assert.match(e.message, message);
      assert.is((await c.errorCode('guest_info')).code, 'RESTORE_PENDING', `still pending after ${JSON.stringify(overrides)}`);
    }
    // A MAC no interface has fails after the checks; the agent stays pending.
    const noMac = await c.errorCode('restored', restoredArgs({ macs: [{ from: '02:00:5e:99:99:99', to: '02:00:5e:99:99:98' }] }));
    assert.is(noMac.code, 'INTERNAL');
    assert.match(noMac.message, 'macs[0].from: no interface has MAC 02:00:5e:99:99:99', noMac.message);

    // A NIC with the template's MAC (a veth in the agent's namespace) takes the pod's.
    ns('ip', 'link', 'add', 'v0', 'address', '02:00:5e:10:00:01', 'type', 'veth', 'peer', 'name', 'v0p');
    const r = await c.ok('restored', restoredArgs({ macs: [{ from: '02:00:5E:10:00:01', to: '02:00:5e:10:00:aa' }] }));
    assert.equal(r, { epoch: 7, hwrngBytes: 0, clockSet: false });
    assert.is(JSON.parse(ns('ip', '-j', 'link', 'show', 'dev', 'v0'))[0].address, '02:00:5e:10:00:aa');
    assert.is((await c.ok('guest_info')).epoch, 7);
    assert.is(await run(c, ['hostname']), 'restored-1\n');
    assert.is(readFileSync(join(dir, 'machine-id'), 'utf8'), `${MACHINE_ID}\n`);
    assert.is(hostname(), hostBefore, 'the host\'s hostname is untouched (the agent has its own UTS namespace)');
    // Applied once: a second restored on the same VM is no restore.
    assert.is((await c.errorCode('restored', restoredArgs({ epoch: 8 }))).code, 'NOT_RESTORED');
    c.close();

    const d = await Conn.open(agent.sockPath);
    assert.equal(await d.ok('hello', { version: 1 }), { version: 1, agent: 'vc-agent 0.1.0', epoch: 7, restorePending: false });
    d.close();
  });

  test('a second restore gets its own identity', async () => {
    await resetConnection();
    const c = await Conn.open(agent.sockPath);
    assert.is((await c.ok('hello', { version: 1 })).restorePending, true);
    const other = '89abcdef0123456789abcdef01234567';
    assert.equal(await c.ok('restored', restoredArgs({ epoch: 8, hostname: 'restored-2', machineId: other })), { epoch: 8, hwrngBytes: 0, clockSet: false });
    assert.is(await run(c, ['hostname']), 'restored-2\n');
    assert.is(readFileSync(join(dir, 'machine-id'), 'utf8'), `${other}\n`);
    assert.equal(await c.ok('hello', { version: 1 }), { version: 1, agent: 'vc-agent 0.1.0', epoch: 8, restorePending: false });
    c.close();
  });
});
