// connectAgent over leased ports, against fake agents on real sockets and real lease files.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AgentClient } from '../../../src/agent/index.js';
import { connectAgent } from '../../../src/api/agent-link.js';
import type { AgentEndpoint } from '../../../src/hypervisor/types.js';
import { FakeAgent, rejection, within } from '../agent/fake-agent.js';

const dir = mkdtempSync(join(tmpdir(), 'vc-link-'));
const clients: AgentClient[] = [];

test.after.each(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await FakeAgent.stopAll();
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function leasedPorts(count: number): Promise<{ agents: FakeAgent[]; endpoint: AgentEndpoint }> {
  const agents = await Promise.all(Array.from({ length: count }, () => FakeAgent.start()));
  const tag = Math.random().toString(36).slice(2);
  const ports = agents.map((agent, i) => ({ socket: agent.path, lease: join(dir, `${tag}.${i}.lease`) }));
  return { agents, endpoint: { kind: 'leased-ports', ports } };
}

async function connect(endpoint: AgentEndpoint, timeoutMs = 2000): Promise<AgentClient> {
  const client = await within(connectAgent(endpoint, { timeoutMs }), timeoutMs + 1000);
  clients.push(client);
  return client;
}

test('each client gets a port of its own; with all taken the next fails AGENT_BUSY; a closed client frees its port', async () => {
  const { agents, endpoint } = await leasedPorts(2);
  const first = await connect(endpoint);
  await connect(endpoint);
  await within(agents[0]!.nextConnection());
  await within(agents[1]!.nextConnection());

  const started = Date.now();
  const err = await rejection(connectAgent(endpoint, { timeoutMs: 300 }), 2000);
  assert.is(err.code, 'AGENT_BUSY');
  assert.match(err.message, /all 2 agent ports were busy for 300 ms/);
  assert.ok(Date.now() - started < 1000, 'the whole call stayed near its timeout');

  await first.close();
  await connect(endpoint);
  await within(agents[0]!.nextConnection(), 2000, 'the third client on the freed port 0');
});

test('a client waiting for a port connects once one frees up, within its timeout', async () => {
  const { agents, endpoint } = await leasedPorts(1);
  const only = await connect(endpoint);
  await within(agents[0]!.nextConnection());
  setTimeout(() => void only.close(), 200);
  const waited = await connect(endpoint, 3000);
  assert.ok(waited.agent.length > 0, 'hello answered');
});

test.run();
