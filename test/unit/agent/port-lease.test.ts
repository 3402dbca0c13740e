// The free-port lease on real files with real flock(2): which port a client gets, waiting while all
// are taken, the timeout's error, and that a lease dies with its process.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dialLeasedPort, leasePort, type LeasablePort, type PortLease } from '../../../src/agent/port-lease.js';
import { rejection, within } from './fake-agent.js';

const dirs: string[] = [];
const leases: PortLease[] = [];
const servers: { server: Server; sockets: Set<Socket> }[] = [];

function portsIn(count: number): LeasablePort[] {
  const dir = mkdtempSync(join(tmpdir(), 'vc-lease-'));
  dirs.push(dir);
  return Array.from({ length: count }, (_, i) => ({ socket: join(dir, `agent.${i}.sock`), lease: join(dir, `agent.${i}.lease`) }));
}

async function take(ports: LeasablePort[], options = {}): Promise<PortLease> {
  const lease = await within(leasePort(ports, options));
  leases.push(lease);
  return lease;
}

/** Listens on every port's socket; `accepted[i]` counts the connections port i got. */
async function serveAll(ports: LeasablePort[]): Promise<number[]> {
  const accepted = ports.map(() => 0);
  for (const [i, port] of ports.entries()) {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      accepted[i]!++;
      sockets.add(socket);
      socket.on('error', () => {});
    });
    servers.push({ server, sockets });
    await new Promise<void>((resolve) => server.listen(port.socket, resolve));
  }
  return accepted;
}

test.after.each(async () => {
  await Promise.all(leases.splice(0).map((l) => l.release()));
  for (const { server, sockets } of servers.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

test('clients get the first free port, each a different one, and a released port is taken again', async () => {
  const ports = portsIn(3);
  const a = await take(ports);
  const b = await take(ports);
  assert.equal([a.index, b.index], [0, 1]);
  assert.is(b.port, ports[1]);
  await a.release();
  await a.release(); // idempotent
  assert.is((await take(ports)).index, 0);
  assert.is((await take(ports)).index, 2);
});

test('with every port taken, a client waits and gets the first port that frees up', async () => {
  const ports = portsIn(2);
  await take(ports);
  const second = await take(ports);
  const started = Date.now();
  setTimeout(() => void second.release(), 150);
  const waited = await take(ports, { timeoutMs: 2000 });
  assert.is(waited.index, 1);
  assert.ok(Date.now() - started >= 140, `got the port after ${Date.now() - started} ms, before it was released`);
});

test('the timeout says that all N ports were busy (AGENT_BUSY) and names the lease files', async () => {
  const ports = portsIn(3);
  for (let i = 0; i < 3; i++) await take(ports);
  const started = Date.now();
  const err = await rejection(leasePort(ports, { timeoutMs: 200 }));
  assert.is(err.code, 'AGENT_BUSY');
  assert.match(err.message, /all 3 agent ports were busy for 200 ms/);
  assert.ok(err.message.includes(ports[0]!.lease) && err.message.includes(ports[2]!.lease), err.message);
  assert.ok(Date.now() - started >= 190, 'it waited for the timeout');
});

test("the caller's abort ends the wait with AGENT_ABORTED; an empty list is refused", async () => {
  const ports = portsIn(1);
  await take(ports);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('caller gave up')), 50);
  const err = await rejection(leasePort(ports, { signal: controller.signal, timeoutMs: 5000 }));
  assert.is(err.code, 'AGENT_ABORTED');
  const empty = await rejection(leasePort([]));
  assert.is(empty.code, 'AGENT_INVALID_ARGUMENT');
  assert.match(empty.message, /ports: /);
});

test('a lease file that cannot be opened is an error naming it', async () => {
  const err = await rejection(leasePort([{ socket: '/nonexistent/a.sock', lease: '/nonexistent/dir/agent.0.lease' }]));
  assert.is(err.code, 'AGENT_CONNECT_FAILED');
  assert.match(err.message, /\/nonexistent\/dir\/agent\.0\.lease/);
});

test('a lease held by a process that is killed is free again (the kernel drops the lock)', async () => {
  const ports = portsIn(1);
  const leaseModule = fileURLToPath(new URL('../../../src/agent/port-lease.js', import.meta.url));
  const script = `const { leasePort } = await import(${JSON.stringify(leaseModule)});
    const lease = await leasePort(${JSON.stringify(ports)});
    console.log('held', lease.index);
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await within(new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d)))), 5000, 'child lease');
    assert.is(line.trim(), 'held 0');
    const err = await rejection(leasePort(ports, { timeoutMs: 100 }));
    assert.is(err.code, 'AGENT_BUSY', 'the child holds the only port');
  } finally {
    child.kill('SIGKILL');
  }
  await new Promise((resolve) => child.once('exit', resolve));
  assert.is((await take(ports, { timeoutMs: 1000 })).index, 0);
});

test('dialLeasedPort connects to the leased port and frees it when the socket closes', async () => {
  const ports = portsIn(2);
  const accepted = await serveAll(ports);
  const first = await within(dialLeasedPort(ports));
  const second = await within(dialLeasedPort(ports));
  assert.equal(accepted, [1, 1]);
  const busy = await rejection(dialLeasedPort(ports, { timeoutMs: 100 }));
  assert.is(busy.code, 'AGENT_BUSY');
  first.destroy();
  const third = await within(dialLeasedPort(ports, { timeoutMs: 2000 }));
  assert.equal(accepted, [2, 1], 'the freed port 0 was used again');
  second.destroy();
  third.destroy();
});

test('dialLeasedPort releases the lease when the socket cannot be reached', async () => {
  const ports = portsIn(1); // nobody listens
  const err = await rejection(dialLeasedPort(ports));
  assert.is(err.code, 'AGENT_CONNECT_FAILED');
  assert.ok(err.message.includes(ports[0]!.socket), err.message);
  assert.is((await take(ports, { timeoutMs: 100 })).index, 0, 'the failed dial did not keep the port');
});

test.run();
