// configure_network on the host side: networkArguments checks with the agent's rules and names
// the field and value; AgentClient.configureNetwork sends the checked arguments and parses the
// result (against the scripted fake agent).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AgentClient } from '../../../src/agent/client.js';
import { AgentError } from '../../../src/agent/errors.js';
import { networkArguments, type NetworkConfig } from '../../../src/agent/network.js';
import { FakeAgent, rejection, within } from './fake-agent.js';

const MAC = '02:00:5e:10:00:01';

test.after.each(() => FakeAgent.stopAll());

test('networkArguments passes a full configuration through unchanged', () => {
  const cfg: NetworkConfig = {
    interfaces: [{ mac: MAC.toUpperCase(), name: 'eth0', mtu: 1400, addresses: ['10.1.2.3/24', 'fd00::3/64'], up: true }],
    routes: [{ dest: 'default', gateway: '10.1.2.1' }, { dest: 'default', gateway: 'fd00::1', metric: 5 }, { dest: '10.9.0.0/16', interface: MAC }, { dest: 'fd01::/64', interface: 'eth0' }],
    dns: { nameservers: ['10.1.2.1', 'fd00::1'], search: ['svc.local'], options: ['ndots:5'] },
    hosts: [{ ip: '10.1.2.3', names: ['pod', 'pod.local'] }],
    hostname: 'pod-1',
  };
  assert.equal(networkArguments(cfg), cfg);
  assert.equal(networkArguments({}), {});
});

test('networkArguments: AGENT_INVALID_ARGUMENT naming the field and the value', () => {
  const cases: [unknown, string][] = [
    [{ interfaces: {} }, 'interfaces must be an array'],
    [{ interfaces: [{}] }, 'interfaces[0].mac must be a string'],
    [{ interfaces: [{ mac: '02:00:5e:10:00' }] }, 'interfaces[0].mac must be a MAC address aa:bb:cc:dd:ee:ff, got "02:00:5e:10:00"'],
    [{ interfaces: [{ mac: MAC }, { mac: MAC.toUpperCase() }] }, 'interfaces[1].mac "02:00:5E:10:00:01" is listed twice'],
    [{ interfaces: [{ mac: MAC, name: 'much-too-long-name' }] }, 'interfaces[0].name must be an interface name'],
    [{ interfaces: [{ mac: MAC, mtu: 67 }] }, 'interfaces[0].mtu must be an integer 68..65535, got 67'],
    [{ interfaces: [{ mac: MAC, up: 1 }] }, 'interfaces[0].up must be a boolean'],
    [{ interfaces: [{ mac: MAC, addresses: ['10.0.0.1'] }] }, 'interfaces[0].addresses[0] must be an address with a prefix length (10.1.2.3/24, fd00::3/64), got "10.0.0.1"'],
    [{ interfaces: [{ mac: MAC, addresses: ['fd00::1/129'] }] }, 'interfaces[0].addresses[0]'],
    [{ routes: [{ dest: '10.0.0.0/8' }] }, 'routes[0].interface is required for a route without a gateway'],
    [{ routes: [{ dest: '10.0.0.1/8', interface: 'eth0' }] }, 'routes[0].dest "10.0.0.1/8" has host bits set past the prefix length'],
    [{ routes: [{ dest: 'fd00::1/64', interface: 'eth0' }] }, 'routes[0].dest "fd00::1/64" has host bits'],
    [{ routes: [{ dest: 'anywhere', gateway: '10.0.0.1' }] }, 'routes[0].dest must be "default" or a CIDR'],
    [{ routes: [{ dest: 'fd00::/64', gateway: '10.0.0.1' }] }, 'routes[0].gateway "10.0.0.1" is not of the family of dest "fd00::/64"'],
    [{ routes: [{ dest: 'default', gateway: '10.0.0.1', metric: -1 }] }, 'routes[0].metric must be an integer'],
    [{ dns: { nameservers: ['dns.example'] } }, 'dns.nameservers[0] must be an IP address, got "dns.example"'],
    [{ dns: { search: ['a b'] } }, 'dns.search[0] must be one word of printable characters, got "a b"'],
    [{ hosts: [{ ip: '10.0.0.1', names: [] }] }, 'hosts[0].names must not be empty'],
    [{ hosts: [{ ip: 'x', names: ['a'] }] }, 'hosts[0].ip must be an IP address, got "x"'],
    [{ hostname: '-x' }, 'hostname must be a host name'],
    [{ hostname: 'a'.repeat(65) }, 'hostname must be a host name'],
  ];
  for (const [cfg, message] of cases) {
    try {
      networkArguments(cfg as NetworkConfig);
      assert.unreachable(JSON.stringify(cfg));
    } catch (err) {
      assert.instance(err, AgentError, JSON.stringify(cfg));
      assert.is((err as AgentError).code, 'AGENT_INVALID_ARGUMENT');
      assert.ok((err as Error).message.startsWith(`configure_network: ${message}`), `${JSON.stringify(cfg)} -> ${(err as Error).message}`);
    }
  }
});

test('configureNetwork sends the checked arguments, parses the interfaces, refuses bad input unsent', async () => {
  const agent = await FakeAgent.start();
  const client = await within(AgentClient.connect(agent.dial), 2000, 'connect');
  const conn = await agent.nextConnection();
  const p = client.configureNetwork({ interfaces: [{ mac: MAC, name: 'eth0' }] });
  const req = await conn.nextRequest('configure_network');
  assert.equal(req.args, { interfaces: [{ mac: MAC, name: 'eth0' }] });
  conn.reply(req.id, { interfaces: [{ mac: MAC, name: 'eth0', mtu: 1500, index: 2 }] });
  assert.equal(await within(p), [{ mac: MAC, name: 'eth0', mtu: 1500, index: 2 }]);
  const bad = await rejection(client.configureNetwork({ interfaces: [{ mac: 'nope' }] }));
  assert.is(bad.code, 'AGENT_INVALID_ARGUMENT');
  const q = client.configureNetwork({});
  const req2 = await conn.nextRequest('configure_network');
  assert.equal(req2.args, {}, 'the bad request was never sent');
  conn.reply(req2.id, { interfaces: 'x' });
  assert.is((await rejection(q)).code, 'AGENT_PROTOCOL');
  await within(client.close(), 2000, 'close');
  await agent.stop();
});

test.run();
