// src/network/pod-network.ts, netns.ts and tap.ts, the pure parts: the records written before
// anything is made, and the interfaces to mirror from a namespace as the kernel lists it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkPodNetworkHost, planPodNetwork } from '../../../src/network/pod-network.js';
import { givenNetns, planPodNetns } from '../../../src/network/netns.js';
import { interfacesOf, tapName, TAP_NAME } from '../../../src/network/tap.js';
import type { NetnsView } from '../../../src/native.js';
import { inNetns, missingProgram, run } from '../../../src/network/exec.js';
import { defaultConflist } from '../../../src/network/default-conflist.js';
import { ipamLeases } from '../../../src/network/ipam.js';
import { VcError } from '../../../src/errors.js';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';

test('bridge plan: own netns in the pod directory, CNI attachment with the default conflist under the root, taps in that netns', () => {
  const plan = planPodNetwork({ root: '/run/vc', podId: 'p1', podDir: '/run/vc/pods/p1', network: { mode: 'bridge' } });
  assert.equal(plan, {
    version: 1,
    mode: 'bridge',
    netns: { path: '/run/vc/pods/p1/netns', owned: true },
    cni: { containerId: 'p1', netns: '/run/vc/pods/p1/netns', ifName: 'eth0', conflist: defaultConflist({ dataDir: '/run/vc/network/ipam' }) },
    taps: { netns: '/run/vc/pods/p1/netns' },
  });
  assert.equal(JSON.parse(JSON.stringify(plan)), plan, 'the plan is plain JSON, as a record must be');
});

test('bridge plan with the caller\'s conflist and a host netns for the plugins', () => {
  const conflist = { cniVersion: '1.0.0', name: 'mine', plugins: [{ type: 'ptp' }] };
  const plan = planPodNetwork({ root: '/r', podId: 'p', podDir: '/r/pods/p', network: { mode: 'bridge', conflist }, hostNetns: '/t/host' });
  assert.is(plan.cni!.conflist, conflist);
  assert.is(plan.hostNetns, '/t/host');
});

test('netns plan: the caller\'s namespace, not owned, no CNI; none: nothing', () => {
  assert.equal(planPodNetwork({ root: '/r', podId: 'p', podDir: '/r/pods/p', network: { mode: 'netns', path: '/var/run/netns/cni-1' } }), {
    version: 1, mode: 'netns', netns: { path: '/var/run/netns/cni-1', owned: false }, taps: { netns: '/var/run/netns/cni-1' },
  });
  assert.equal(planPodNetwork({ root: '/r', podId: 'p', podDir: '/r/pods/p', network: { mode: 'none' } }), { version: 1, mode: 'none' });
  assert.throws(() => givenNetns('relative/ns'), (e: unknown) => e instanceof VcError && e.code === 'INVALID_CONFIG');
  assert.throws(() => planPodNetwork({ root: '/r', podId: 'p', podDir: '/d', network: { mode: 'macvlan' } as never }), (e: unknown) => e instanceof VcError && e.code === 'INVALID_CONFIG');
  assert.throws(() => planPodNetwork({ root: '/r', podId: '.p', podDir: '/d', network: { mode: 'bridge' } }), (e: unknown) => e instanceof VcError && e.code === 'INVALID_CONFIG');
  assert.equal(planPodNetns('/r/pods/x'), { path: '/r/pods/x/netns', owned: true });
});

test('commands: nsenter wrapping and the tap names', () => {
  assert.equal(inNetns(undefined, ['ip', 'link']), ['ip', 'link']);
  assert.equal(inNetns('/r/pods/p/netns', ['ip', 'link']), ['nsenter', '--net=/r/pods/p/netns', '--', 'ip', 'link']);
  assert.is(tapName(3), 'tap3_vc');
  assert.ok(TAP_NAME.test('tap12_vc'));
  assert.not.ok(TAP_NAME.test('tap0_kata'));
  assert.not.ok(TAP_NAME.test('xtap0_vc'));
});

test('a missing nsenter or iptables is NETWORK_UNAVAILABLE naming it, its package and --network none, before anything runs', async () => {
  const tmp = tempDir('vc-netexec');
  try {
    const bin = join(tmp.path, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'nsenter'), '#!/bin/sh\nexit 99\n');
    chmodSync(join(bin, 'nsenter'), 0o755);
    writeFileSync(join(bin, 'iptables'), 'not executable');
    assert.is(missingProgram('nsenter', `/nonexistent:${bin}`), null);
    assert.is(missingProgram('/abs/path/plugin', ''), null, 'a path is not looked up');
    for (const [program, pkg, dir] of [['nsenter', /install util-linux,/, '/nonexistent'], ['iptables', /install iptables,/, bin]] as const) {
      const err = missingProgram(program, dir);
      assert.instance(err, VcError);
      assert.is(err!.code, 'NETWORK_UNAVAILABLE');
      assert.match(err!.message, new RegExp(`^network: ${program} not found \\(looked in PATH\\); `));
      assert.match(err!.message, pkg);
      assert.match(err!.message, /, or use network none \(--network none\)$/);
    }
    // Inside a namespace the program is checked too: nsenter (here a stub that would exit 99) never runs.
    const err = await run(['iptables', '-S'], { netns: '/nonexistent/netns', env: { PATH: bin } }).catch((e: unknown) => e);
    assert.is((err as VcError).code, 'NETWORK_UNAVAILABLE');
    assert.match((err as VcError).message, /iptables not found/);
    const noNsenter = await run(['ip', 'link'], { netns: '/nonexistent/netns', env: { PATH: '/nonexistent' } }).catch((e: unknown) => e);
    assert.match((noNsenter as VcError).message, /nsenter not found .*install util-linux/);
  } finally {
    tmp.remove();
  }
});

// A pod netns after CNI ADD as the kernel lists it (readNetns), plus a tap of ours, a link
// without a global address, a second addressed veth, and routes ip would not show or we skip.
const VIEW: NetnsView = {
  links: [
    { index: 1, name: 'lo', ether: false, mac: '00:00:00:00:00:00', mtu: 65536 },
    { index: 2, name: 'eth0', ether: true, mac: '5a:14:83:0d:98:95', mtu: 1500 },
    { index: 4, name: 'tap0_vc', ether: true, mac: '9e:ed:4e:b8:9b:52', mtu: 1500 },
    { index: 5, name: 'eth2', ether: true, mac: '02:00:00:00:00:05', mtu: 1500 },
    { index: 3, name: 'net1', ether: true, mac: '02:00:00:00:00:03', mtu: 9000 },
  ],
  addresses: [
    { index: 1, family: 4, address: '127.0.0.1', prefix: 8, scope: 254 },
    { index: 2, family: 4, address: '10.231.0.2', prefix: 16, scope: 0 },
    { index: 2, family: 6, address: 'fd00::2', prefix: 64, scope: 0 },
    { index: 2, family: 6, address: 'fe80::5814:83ff:fe0d:9895', prefix: 64, scope: 253 },
    { index: 5, family: 6, address: 'fe80::1', prefix: 64, scope: 253 },
    { index: 3, family: 4, address: '192.0.2.7', prefix: 24, scope: 0 },
  ],
  routes: [
    { family: 4, dst: '', dstLen: 0, gateway: '10.231.0.1', oif: 2, scope: 0, protocol: 3, type: 1, source: '' },
    { family: 4, dst: '10.231.0.0', dstLen: 16, gateway: '', oif: 2, scope: 253, protocol: 2, type: 1, source: '10.231.0.2' },
    { family: 4, dst: '198.51.100.9', dstLen: 32, gateway: '192.0.2.1', oif: 3, scope: 0, protocol: 4, type: 1, source: '' },
    { family: 4, dst: '203.0.113.0', dstLen: 24, gateway: '', oif: 0, scope: 0, protocol: 3, type: 6, source: '' }, // blackhole
    { family: 4, dst: '203.0.114.0', dstLen: 24, gateway: '', oif: 3, scope: 0, protocol: 3, type: 7, source: '' }, // unreachable
    { family: 6, dst: 'fd00::', dstLen: 64, gateway: '', oif: 2, scope: 0, protocol: 2, type: 1, source: '' },
    { family: 6, dst: 'fe80::', dstLen: 64, gateway: '', oif: 2, scope: 0, protocol: 2, type: 1, source: '' },
    { family: 6, dst: '', dstLen: 0, gateway: 'fd00::1', oif: 2, scope: 0, protocol: 3, type: 1, source: '' },
    { family: 6, dst: '2001:db8::', dstLen: 48, gateway: 'fd00::9', oif: 2, scope: 0, protocol: 250, type: 1, source: '' },
  ],
};

test('interfacesOf: addressed ethernet links in ifindex order with their taps, global addresses and their routes, named as ip names them', () => {
  assert.equal(interfacesOf(VIEW), [
    {
      name: 'eth0', tap: 'tap0_vc', mac: '5a:14:83:0d:98:95', mtu: 1500,
      addresses: ['10.231.0.2/16', 'fd00::2/64'],
      routes: [
        { dst: '0.0.0.0/0', gateway: '10.231.0.1', dev: 'eth0', family: 4 },
        { dst: '10.231.0.0/16', dev: 'eth0', family: 4, scope: 'link', protocol: 'kernel', source: '10.231.0.2' },
        { dst: 'fd00::/64', dev: 'eth0', family: 6, protocol: 'kernel' },
        { dst: '::/0', gateway: 'fd00::1', dev: 'eth0', family: 6 },
        { dst: '2001:db8::/48', gateway: 'fd00::9', dev: 'eth0', family: 6, protocol: '250' },
      ],
    },
    {
      name: 'net1', tap: 'tap1_vc', mac: '02:00:00:00:00:03', mtu: 9000,
      addresses: ['192.0.2.7/24'],
      routes: [{ dst: '198.51.100.9/32', gateway: '192.0.2.1', dev: 'net1', family: 4, protocol: 'static' }],
    },
  ]);
});

test('interfacesOf: an empty namespace, or one with only lo and a tap, has none', () => {
  assert.equal(interfacesOf({ links: [], addresses: [], routes: [] }), []);
  assert.equal(interfacesOf({ links: VIEW.links.filter((l) => l.index === 1 || l.index === 4), addresses: VIEW.addresses.filter((a) => a.index === 1), routes: [] }), []);
});

test('ipamLeases: host-local\'s lease files (as bridge 1.1.1 writes them), not its lock or last-reserved files', async () => {
  const tmp = tempDir('vcipam');
  try {
    assert.equal(await ipamLeases(join(tmp.path, 'none'), 'virtcontainers'), []);
    const dir = join(tmp.path, 'virtcontainers');
    mkdirSync(dir);
    writeFileSync(join(dir, '10.231.0.2'), 'p1\r\neth0');
    writeFileSync(join(dir, 'fd00::3'), 'p2\r\neth1');
    writeFileSync(join(dir, 'last_reserved_ip.0'), '10.231.0.2');
    writeFileSync(join(dir, 'lock'), '');
    assert.equal(await ipamLeases(tmp.path, 'virtcontainers'), [
      { address: '10.231.0.2', containerId: 'p1', ifName: 'eth0', path: join(dir, '10.231.0.2') },
      { address: 'fd00::3', containerId: 'p2', ifName: 'eth1', path: join(dir, 'fd00::3') },
    ]);
  } finally {
    tmp.remove();
  }
});

test('checkPodNetworkHost: a plugin the conflist names that no directory has is NETWORK_UNAVAILABLE naming it; none needs nothing', async () => {
  const conflist = { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'no-such-plugin-vc' }] };
  const plan = planPodNetwork({ root: '/r', podId: 'p', podDir: '/r/pods/p', network: { mode: 'bridge', conflist } });
  const err = await checkPodNetworkHost(plan, { pluginDirs: ['/nonexistent-cni'] }).catch((e: VcError) => e);
  assert.instance(err, VcError);
  assert.is((err as VcError).code, 'NETWORK_UNAVAILABLE');
  assert.match((err as Error).message, 'no-such-plugin-vc');
  assert.match((err as Error).message, '/nonexistent-cni');
  await checkPodNetworkHost(planPodNetwork({ root: '/r', podId: 'p', podDir: '/r/pods/p', network: { mode: 'none' } }), { pluginDirs: [] });
});

test('checkPodNetworkHost: a program missing from PATH is named with its package', async () => {
  const plan = planPodNetwork({ root: '/r', podId: 'p', podDir: '/r/pods/p', network: { mode: 'netns', path: '/run/netns/x' } });
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent-bin';
  try {
    const err = await checkPodNetworkHost(plan).catch((e: VcError) => e);
    assert.is((err as VcError).code, 'NETWORK_UNAVAILABLE');
    assert.match((err as Error).message, 'nsenter');
  } finally {
    process.env.PATH = saved;
  }
});

test.run();
