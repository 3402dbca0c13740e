// configure_network of the guest agent (docs/agent-protocol.md, "Network") in its host test mode.
// The agent runs under `unshare -n`, in a network namespace made for this file; the test adds a
// veth pair there (`nsenter -t <agent> -n ip link add …`) and checks what the agent did with
// `ip -j addr` / `ip -j route` in that namespace. Nothing touches the root namespace's interfaces
// or routes. The pod's resolv.conf/hosts/hostname go to --run-dir/net and into containers (a
// directory image and a cgroup2 directory of the test's own, as in agent-containers.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildBusyboxRootfs, cgroup2Mount, containerSkipReason, isRoot, runOrSkip, stopAgent } from './agent-container-rig.js';
import { Conn, startAgent, text, type RunningAgent } from './agent-wire.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skipReason = !isRoot ? 'network namespaces need root'
  : !has('unshare') || !has('nsenter') || !has('ip') ? 'needs unshare, nsenter and ip (util-linux, iproute2)' : '';
const containerSkip = containerSkipReason;

const MAC = '02:00:5e:10:00:01';
const MAC2 = '02:00:5e:10:00:02';

let dir = '';
let runDir = '';
let rootfs = '';
let cgroupRoot = '';
let agent: RunningAgent | undefined;
let c: Conn;

/** Runs a command in the agent's network namespace; returns stdout, fails the test on error. */
function ns(...argv: string[]): string {
  const r = spawnSync('nsenter', ['-t', String(agent!.proc.pid), '-n', ...argv], { encoding: 'utf8' });
  assert.is(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const nsJson = (...argv: string[]): any[] => JSON.parse(ns('ip', '-j', ...argv));
const link = (name: string) => nsJson('addr', 'show', 'dev', name)[0];
const addrs = (name: string) => link(name).addr_info.map((a: any) => `${a.local}/${a.prefixlen}`).sort();

/** A veth pair in the agent's namespace: `name` (MAC `mac`) and its peer `<name>p`, the peer up. */
function veth(name: string, mac: string): void {
  ns('ip', 'link', 'add', name, 'address', mac, 'type', 'veth', 'peer', 'name', `${name}p`);
  ns('ip', 'link', 'set', `${name}p`, 'up');
}

test.before(async () => {
  if (skipReason) return;
  dir = mkdtempSync('/tmp/vc-net-test-');
  runDir = join(dir, 'run');
  if (!containerSkip) {
    rootfs = join(dir, 'rootfs');
    buildBusyboxRootfs(rootfs, {
      files: { 'etc/resolv.conf': 'nameserver 192.0.2.99\n' }, // the image's own
      links: { 'etc/hosts': '../run/hosts-elsewhere' }, // a symlink: replaced, never followed
    });
    cgroupRoot = join(cgroup2Mount!, `vc-net-test-${process.pid}`);
  }
  agent = await startAgent(dir, ['--run-dir', runDir], ['unshare', '-n', '--']);
  c = await Conn.hello(agent.sockPath);
});

test.after(async () => {
  if (agent) await stopAgent(agent, c); // a clean exit deletes containers; the namespace goes with the agent
  if (dir) rmSync(dir, { recursive: true, force: true });
});

runOrSkip('agent network', skipReason, defineTests);

function defineTests(): void {
  test('the agent runs in a namespace of its own: lo down, no other interface yet', () => {
    const links = nsJson('link').map((l: any) => l.ifname);
    assert.equal(links, ['lo']);
    assert.not.ok(link('lo').flags.includes('UP'));
  });

  test('configure_network {} brings lo up and answers no interfaces', async () => {
    assert.equal(await c.ok('configure_network', {}), { interfaces: [] });
    assert.ok(link('lo').flags.includes('UP'));
    assert.ok(addrs('lo').includes('127.0.0.1/8'));
  });

  test('an interface by MAC: renamed, MTU, IPv4 + IPv6 addresses, up; routes in two passes', async () => {
    veth('v0', MAC);
    const r = await c.ok('configure_network', {
      interfaces: [{ mac: MAC.toUpperCase(), name: 'eth0', mtu: 1400, addresses: ['10.1.2.3/24', 'fd00:1::3/64'] }],
      // gateway routes listed first: the agent still adds the on-link route before them
      routes: [
        { dest: 'default', gateway: '10.9.0.1' },
        { dest: '::/0', gateway: 'fd00:1::1', metric: 100 },
        { dest: '10.9.0.0/16', interface: MAC },
        { dest: '192.168.50.0/24', gateway: '10.1.2.1', interface: 'eth0', metric: 20 },
      ],
    });
    const ifc = r.interfaces[0];
    assert.equal({ mac: ifc.mac, name: ifc.name, mtu: ifc.mtu }, { mac: MAC, name: 'eth0', mtu: 1400 });
    assert.ok(Number.isInteger(ifc.index) && ifc.index > 1);
    const l = link('eth0');
    assert.is(l.address, MAC);
    assert.is(l.mtu, 1400);
    assert.ok(l.flags.includes('UP'), JSON.stringify(l.flags));
    assert.ok(addrs('eth0').includes('10.1.2.3/24'));
    assert.ok(addrs('eth0').includes('fd00:1::3/64'));
    assert.not.ok(nsJson('link').some((x: any) => x.ifname === 'v0'), 'the old name is gone');
    const v4 = nsJson('route', 'show', 'table', 'main');
    const find = (dst: string) => v4.find((x: any) => x.dst === dst);
    assert.equal({ gw: find('default')?.gateway, dev: find('default')?.dev }, { gw: '10.9.0.1', dev: 'eth0' });
    assert.equal({ dev: find('10.9.0.0/16')?.dev, scope: find('10.9.0.0/16')?.scope, protocol: find('10.9.0.0/16')?.protocol }, { dev: 'eth0', scope: 'link', protocol: 'static' });
    assert.equal({ gw: find('192.168.50.0/24')?.gateway, metric: find('192.168.50.0/24')?.metric }, { gw: '10.1.2.1', metric: 20 });
    const v6 = nsJson('-6', 'route').find((x: any) => x.dst === 'default');
    assert.equal({ gw: v6?.gateway, dev: v6?.dev, metric: v6?.metric }, { gw: 'fd00:1::1', dev: 'eth0', metric: 100 });
  });

  test('applying the same configuration again succeeds and changes nothing; up: false', async () => {
    const cfg = { interfaces: [{ mac: MAC, name: 'eth0', mtu: 1400, addresses: ['10.1.2.3/24'] }], routes: [{ dest: '10.9.0.0/16', interface: 'eth0' }] };
    const before = addrs('eth0');
    await c.ok('configure_network', cfg);
    await c.ok('configure_network', cfg);
    assert.equal(addrs('eth0'), before);
    assert.is(nsJson('route').filter((x: any) => x.dst === '10.9.0.0/16').length, 1);
    veth('v1', MAC2);
    const r = await c.ok('configure_network', { interfaces: [{ mac: MAC2, up: false, addresses: ['10.3.0.2/16'] }] });
    assert.is(r.interfaces[0].name, 'v1', 'no name: the kernel\'s stays');
    assert.not.ok(link('v1').flags.includes('UP'));
    assert.equal(addrs('v1'), ['10.3.0.2/16']);
    await c.ok('configure_network', { interfaces: [{ mac: MAC2, name: 'eth1' }] });
    assert.ok(link('eth1').flags.includes('UP'), 'renamed while down, then up (the default)');
  });

  test('failures: NOT_FOUND for an unknown MAC (nothing changed), NETWORK_FAILED naming the route and errno text', async () => {
    let e = await c.errorCode('configure_network', {
      interfaces: [{ mac: MAC, mtu: 1300 }, { mac: '02:00:5e:10:00:99', addresses: ['10.4.0.1/24'] }],
    });
    assert.is(e.code, 'NOT_FOUND');
    assert.match(e.message, 'interfaces[1]');
    assert.match(e.message, '02:00:5e:10:00:99');
    assert.is(link('eth0').mtu, 1400, 'the first interface was left alone');
    e = await c.errorCode('configure_network', { routes: [{ dest: '10.77.0.0/16', gateway: '172.31.9.9' }] });
    assert.is(e.code, 'NETWORK_FAILED');
    assert.is(e.message, 'route 10.77.0.0/16 via 172.31.9.9: Network is unreachable');
    e = await c.errorCode('configure_network', { routes: [{ dest: '10.78.0.0/16', interface: 'nosuch0' }] });
    assert.is(e.code, 'NOT_FOUND');
    assert.match(e.message, 'route 10.78.0.0/16 dev nosuch0');
    e = await c.errorCode('configure_network', { interfaces: [{ mac: MAC2, name: 'eth0' }] });
    assert.is(e.code, 'NETWORK_FAILED');
    assert.match(e.message, `interface eth1 (${MAC2}): rename to eth0: File exists`);
    assert.ok(link('eth1').flags.includes('UP'), 'a failed rename puts the interface back up');
  });

  test('bad arguments: BAD_REQUEST naming the field and the value', async () => {
    const cases: [Record<string, unknown>, string, string?][] = [
      [{ interfaces: {} }, 'interfaces', 'got {}'],
      [{ interfaces: [5] }, 'interfaces[0]', 'got 5'],
      [{ interfaces: [{}] }, 'interfaces[0].mac'],
      [{ interfaces: [{ mac: '02:00:5e:10:00' }] }, 'interfaces[0].mac', '"02:00:5e:10:00"'],
      [{ interfaces: [{ mac: 'zz:00:5e:10:00:01' }] }, 'interfaces[0].mac', '"zz:00:5e:10:00:01"'],
      [{ interfaces: [{ mac: MAC }, { mac: MAC.toUpperCase() }] }, 'interfaces[1].mac', 'twice'],
      [{ interfaces: [{ mac: MAC, name: 'a-very-long-name0' }] }, 'interfaces[0].name', '"a-very-long-name0"'],
      [{ interfaces: [{ mac: MAC, name: 'eth/0' }] }, 'interfaces[0].name', '"eth/0"'],
      [{ interfaces: [{ mac: MAC, name: 'x' }, { mac: MAC2, name: 'x' }] }, 'interfaces[1].name', 'twice'],
      [{ interfaces: [{ mac: MAC, mtu: 67 }] }, 'interfaces[0].mtu', '68 to 65535, got 67'],
      [{ interfaces: [{ mac: MAC, mtu: 1500.5 }] }, 'interfaces[0].mtu', 'got 1500.5'],
      [{ interfaces: [{ mac: MAC, up: 'yes' }] }, 'interfaces[0].up', 'got "yes"'],
      [{ interfaces: [{ mac: MAC, addresses: '10.0.0.1/8' }] }, 'interfaces[0].addresses', 'got "10.0.0.1/8"'],
      [{ interfaces: [{ mac: 5 }] }, 'interfaces[0].mac', 'got 5'],
      [{ interfaces: [{ mac: MAC, addresses: ['10.0.0.1'] }] }, 'interfaces[0].addresses[0]', '"10.0.0.1"'],
      [{ interfaces: [{ mac: MAC, addresses: ['10.0.0.1/33'] }] }, 'interfaces[0].addresses[0]', '"10.0.0.1/33"'],
      [{ interfaces: [{ mac: MAC, addresses: ['fd00::1/129'] }] }, 'interfaces[0].addresses[0]', '"fd00::1/129"'],
      [{ interfaces: [{ mac: MAC, addresses: ['10.0.0.1/8', 'nope/8'] }] }, 'interfaces[0].addresses[1]', '"nope/8"'],
      [{ routes: [{}] }, 'routes[0].dest'],
      [{ routes: [{ dest: '10.0.0.0/8' }] }, 'routes[0].interface', 'without a gateway'],
      [{ routes: [{ dest: '10.0.0.1/8', interface: 'eth0' }] }, 'routes[0].dest', 'host bits'],
      [{ routes: [{ dest: 'anywhere', gateway: '10.0.0.1' }] }, 'routes[0].dest', '"anywhere"'],
      [{ routes: [{ dest: 'default', gateway: '10.0.0.256' }] }, 'routes[0].gateway', '"10.0.0.256"'],
      [{ routes: [{ dest: 'fd00::/64', gateway: '10.0.0.1' }] }, 'routes[0].gateway', 'family'],
      [{ routes: [{ dest: 'default', gateway: '10.0.0.1', interface: 'bad name' }] }, 'routes[0].interface', '"bad name"'],
      [{ routes: [{ dest: 'default', gateway: '10.0.0.1', metric: -1 }] }, 'routes[0].metric', 'got -1'],
      [{ routes: [{ dest: 'default', gateway: '10.0.0.1', metric: 4294967296 }] }, 'routes[0].metric', 'got 4294967296'],
      [{ dns: [] }, 'dns', 'got []'],
      [{ dns: { nameservers: ['8.8.8.8', 'dns.example'] } }, 'dns.nameservers[1]', '"dns.example"'],
      [{ dns: { search: ['a b'] } }, 'dns.search[0]', '"a b"'],
      [{ dns: { options: ['ndots:5\nnameserver 1.2.3.4'] } }, 'dns.options[0]'],
      [{ hosts: [{ names: ['x'] }] }, 'hosts[0].ip'],
      [{ hosts: [{ ip: 'x', names: ['x'] }] }, 'hosts[0].ip', '"x"'],
      [{ hosts: [{ ip: '10.0.0.1', names: [] }] }, 'hosts[0].names'],
      [{ hosts: [{ ip: '10.0.0.1', names: ['a\tb'] }] }, 'hosts[0].names[0]'],
      [{ hostname: '' }, 'hostname'],
      [{ hostname: '-pod' }, 'hostname', '"-pod"'],
      [{ hostname: 'a'.repeat(65) }, 'hostname'],
    ];
    for (const [args, field, value] of cases) {
      const e = await c.errorCode('configure_network', args);
      assert.is(e.code, 'BAD_REQUEST', JSON.stringify(args));
      assert.ok(e.message.startsWith(`${field}: `), `${JSON.stringify(args)} -> ${e.message}`);
      if (value) assert.ok(e.message.includes(value), `${JSON.stringify(args)} -> ${e.message}`);
    }
    assert.not.ok(existsSync(join(runDir, 'net')), 'bad requests wrote nothing');
  });

  test('resolv.conf, hosts, hostname: content, mode, atomic replacement', async () => {
    await c.ok('configure_network', {
      dns: { nameservers: ['10.1.2.1', 'fd00:1::1'], search: ['svc.cluster.local', 'cluster.local'], options: ['ndots:5', 'edns0'] },
      hosts: [{ ip: '10.1.2.3', names: ['pod-a', 'pod-a.local'] }, { ip: 'fd00:1::3', names: ['pod-a6'] }],
      hostname: 'pod-a',
    });
    const net = join(runDir, 'net');
    assert.is(readFileSync(join(net, 'resolv.conf'), 'utf8'),
      'nameserver 10.1.2.1\nnameserver fd00:1::1\nsearch svc.cluster.local cluster.local\noptions ndots:5 edns0\n');
    assert.is(readFileSync(join(net, 'hosts'), 'utf8'),
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.1.2.3\tpod-a pod-a.local\nfd00:1::3\tpod-a6\n');
    assert.is(readFileSync(join(net, 'hostname'), 'utf8'), 'pod-a\n');
    for (const f of ['resolv.conf', 'hosts', 'hostname']) assert.is(statSync(join(net, f)).mode & 0o777, 0o644);
    assert.not.equal(spawnSync('hostname', { encoding: 'utf8' }).stdout.trim(), 'pod-a', 'test mode leaves the host name alone');

    // Only what is given is replaced; each replacement is a new file renamed over the old one.
    const inode = statSync(join(net, 'resolv.conf')).ino;
    await c.ok('configure_network', { dns: { nameservers: ['10.1.2.53'] } });
    assert.is(readFileSync(join(net, 'resolv.conf'), 'utf8'), 'nameserver 10.1.2.53\n');
    assert.not.equal(statSync(join(net, 'resolv.conf')).ino, inode, 'replaced by rename, not rewritten in place');
    assert.is(readFileSync(join(net, 'hostname'), 'utf8'), 'pod-a\n', 'hostname untouched');
    assert.equal(readdirSync(net).sort(), ['gen', 'hostname', 'hosts', 'resolv.conf'], 'no temporary file left');
    // with no container running, only the current generation of each file is kept
    assert.equal(readdirSync(join(net, 'gen')).map((n) => n.replace(/\.\d+$/, '')).sort(), ['hostname', 'hosts', 'resolv.conf']);

    // A reader never sees a partial or empty file while updates go on.
    const contents = new Set<string>();
    const before = readFileSync(join(net, 'hosts'), 'utf8');
    const updates = (async () => {
      for (let i = 0; i < 40; i++) {
        const many = Array.from({ length: 200 }, (_, k) => `h${i}-${k}`);
        await c.ok('configure_network', { hosts: [{ ip: '10.1.2.3', names: many }] });
      }
    })();
    let done = false;
    void updates.then(() => { done = true; });
    while (!done) {
      contents.add(readFileSync(join(net, 'hosts'), 'utf8'));
      await new Promise((r) => setImmediate(r));
    }
    await updates;
    contents.delete(before);
    assert.ok(contents.size > 0);
    for (const content of contents) assert.match(content, /^127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10\.1\.2\.3\t(h\d+-\d+ ){199}h\d+-199\n$/);
  });

  if (containerSkip) {
    test('containers see the pod files (skipped)', () => console.log(`  SKIP containers: ${containerSkip}`));
    return;
  }

  test('containers: the pod files bound read-only into existing and new ones; updates seen by all', async () => {
    // An agent of its own: the first container exists before any pod file does.
    const dir2 = join(dir, 'ctr');
    mkdirSync(dir2);
    const run2 = join(dir2, 'run');
    const a2 = await startAgent(dir2, ['--run-dir', run2, '--cgroup-root', `${cgroupRoot}-2`], ['unshare', '-n', '--']);
    const c2 = await Conn.hello(a2.sockPath);
    try {
      const start = async (id: string) => {
        await c2.ok('create_container', { id, image: { path: rootfs }, argv: ['sleep', '1000'] });
        await c2.ok('start_container', { id });
      };
      const inside = async (id: string, script: string) => {
        const r = await c2.ok('exec_container', { id, argv: ['sh', '-c', script] });
        const p = await c2.finished(r.process);
        return { out: text(p.stdout), err: text(p.stderr), code: p.exit!.exitCode };
      };
      const gens = () => readdirSync(join(run2, 'net/gen')).sort();

      await start('early');
      let r = await inside('early', 'cat /etc/resolv.conf; readlink /etc/hosts');
      assert.is(r.out, 'nameserver 192.0.2.99\n../run/hosts-elsewhere\n', 'before configure_network: the image\'s own files');

      await c2.ok('configure_network', { dns: { nameservers: ['10.1.2.1'] }, hosts: [{ ip: '10.1.2.3', names: ['pod-a'] }], hostname: 'pod-a' });
      r = await inside('early', 'cat /etc/resolv.conf /etc/hostname; tail -n 1 /etc/hosts; test -L /etc/hosts && echo link; ls /run');
      assert.is(r.out, 'nameserver 10.1.2.1\npod-a\n10.1.2.3\tpod-a\n', 'bound into the running container; the hosts symlink replaced, not followed');
      assert.is(readlinkSync(join(rootfs, 'etc/hosts')), '../run/hosts-elsewhere', 'the image is untouched');
      assert.is(readFileSync(join(rootfs, 'etc/resolv.conf'), 'utf8'), 'nameserver 192.0.2.99\n');

      await start('late');
      r = await inside('late', 'echo x > /etc/resolv.conf; echo $?; echo y > /etc/hosts; echo $?');
      assert.is(r.out, '1\n1\n', 'read-only');
      assert.match(r.err, /Read-only file system/);

      // An update reaches both, atomically stacked over the previous bind.
      await c2.ok('configure_network', { dns: { nameservers: ['10.1.2.54'], search: ['updated.local'] }, hosts: [{ ip: '10.1.2.4', names: ['pod-b'] }] });
      for (const id of ['early', 'late']) {
        r = await inside(id, 'cat /etc/resolv.conf; tail -n 1 /etc/hosts; cat /etc/hostname');
        assert.is(r.out, 'nameserver 10.1.2.54\nsearch updated.local\n10.1.2.4\tpod-b\npod-a\n', id);
      }
      assert.equal(gens(), ['hostname.1', 'hosts.1', 'hosts.2', 'resolv.conf.1', 'resolv.conf.2'], 'old generations kept while containers run');

      for (const id of ['early', 'late']) {
        await c2.ok('signal_container', { id, signal: 9 });
        await c2.ok('wait_container', { id });
        await c2.ok('delete_container', { id });
      }
      await c2.ok('configure_network', { dns: { nameservers: ['10.1.2.55'] } });
      assert.equal(gens(), ['hostname.1', 'hosts.2', 'resolv.conf.3'], 'with no container left, only the current ones');
    } finally {
      await stopAgent(a2, c2);
    }
  });
}
