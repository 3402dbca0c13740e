// src/network/cni.ts and default-conflist.ts, the pure parts: the conflist we ship, the stdin each
// plugin gets, result parsing and plugin errors. The plugins themselves run in
// test/integration/network-host.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  cniDel, cniPluginError, DEFAULT_CNI_PLUGIN_DIRS, isCidr, parseCniResult, planAttachment, pluginConfig, validateConflist, type CniConflist,
} from '../../../src/network/cni.js';
import { DEFAULT_BRIDGE, DEFAULT_SUBNET, defaultConflist, ipamDataDir } from '../../../src/network/default-conflist.js';
import { VcError } from '../../../src/errors.js';

function throws(fn: () => unknown, code: string, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, VcError);
    assert.is((err as VcError).code, code);
    assert.match((err as VcError).message, pattern);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('default conflist: CNI 1.0, bridge vc0 as gateway without masquerade, host-local on 10.231.0.0/16 under the root, no loopback plugin', () => {
  const list = defaultConflist({ dataDir: ipamDataDir('/run/vct') });
  assert.is(DEFAULT_SUBNET, '10.231.0.0/16');
  assert.is(DEFAULT_BRIDGE, 'vc0');
  assert.equal(list, {
    cniVersion: '1.0.0',
    name: 'virtcontainers',
    plugins: [
      {
        type: 'bridge', bridge: 'vc0', isGateway: true, ipMasq: false, hairpinMode: false,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: '/run/vct/network/ipam' },
      },
    ],
  });
  assert.is(validateConflist(list), list);
});

test('default conflist: subnet, bridge, name and MTU can be chosen', () => {
  const list = defaultConflist({ dataDir: '/d', subnet: '10.232.0.0/24', bridge: 'vc1', name: 'other', mtu: 1400 });
  assert.is(list.name, 'other');
  const bridge = list.plugins[0]!;
  assert.is(bridge.bridge, 'vc1');
  assert.is(bridge.mtu, 1400);
  assert.equal((bridge.ipam as { ranges: unknown }).ranges, [[{ subnet: '10.232.0.0/24' }]]);
});

test('default subnet does not overlap the usual container and Kubernetes ranges', () => {
  const toRange = (cidr: string): [number, number] => {
    const [ip, len] = cidr.split('/') as [string, string];
    const n = ip.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
    const size = 2 ** (32 - Number(len));
    return [n, n + size - 1];
  };
  const [lo, hi] = toRange(DEFAULT_SUBNET);
  for (const other of ['10.88.0.0/16', '172.17.0.0/16', '10.244.0.0/16', '10.96.0.0/12', '10.42.0.0/16', '10.43.0.0/16', '192.168.0.0/16', '10.22.0.0/16']) {
    const [a, b] = toRange(other);
    assert.ok(hi < a || lo > b, `${DEFAULT_SUBNET} overlaps ${other}`);
  }
});

test('validateConflist names the bad field', () => {
  throws(() => validateConflist(null), 'INVALID_CONFIG', /must be an object/);
  throws(() => validateConflist({ cniVersion: '1', name: 'n', plugins: [{ type: 'bridge' }] }), 'INVALID_CONFIG', /cniVersion/);
  throws(() => validateConflist({ cniVersion: '1.0.0', name: '', plugins: [{ type: 'bridge' }] }), 'INVALID_CONFIG', /name/);
  throws(() => validateConflist({ cniVersion: '1.0.0', name: 'n', plugins: [] }), 'INVALID_CONFIG', /plugins must be a non-empty array/);
  throws(() => validateConflist({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: '../../bin/sh' }] }), 'INVALID_CONFIG', /plugins\[0\]\.type/);
});

test('planAttachment: the record CNI ADD and DEL work from, validated', () => {
  const list = defaultConflist({ dataDir: '/d' });
  assert.equal(planAttachment('pod-1', '/r/pods/pod-1/netns', list), { containerId: 'pod-1', netns: '/r/pods/pod-1/netns', ifName: 'eth0', conflist: list });
  assert.equal(JSON.parse(JSON.stringify(planAttachment('p', '/n', list))), planAttachment('p', '/n', list), 'plain JSON');
  throws(() => planAttachment('-bad', '/n', list), 'INVALID_CONFIG', /container id/);
  throws(() => planAttachment('ok', '/n', list, 'a/b'), 'INVALID_CONFIG', /interface name/);
  throws(() => planAttachment('ok', '/n', list, 'sixteen-chars-xx'), 'INVALID_CONFIG', /interface name/);
});

test('pluginConfig: the plugin object plus the list name and version, and prevResult when given', () => {
  const list: CniConflist = { cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'bridge', bridge: 'vc0' }, { type: 'loopback', name: 'ignored' }] };
  assert.equal(pluginConfig(list, 0), { type: 'bridge', bridge: 'vc0', cniVersion: '1.0.0', name: 'net' });
  const prev = parseCniResult('{"cniVersion":"1.0.0","ips":[{"address":"10.231.0.2/16"}]}', 'bridge');
  assert.equal(pluginConfig(list, 1, prev), { type: 'loopback', name: 'net', cniVersion: '1.0.0', prevResult: prev });
});

// Output of Debian's bridge plugin 1.1.1 on this machine.
const BRIDGE_RESULT = `{
    "cniVersion": "1.0.0",
    "interfaces": [
        { "name": "vc0", "mac": "e6:c1:85:06:e3:6a" },
        { "name": "vetha4892624", "mac": "5e:f3:9c:b2:f8:69" },
        { "name": "eth0", "mac": "5a:14:83:0d:98:95", "sandbox": "/tmp/nt/pod" }
    ],
    "ips": [ { "interface": 2, "address": "10.231.0.2/16", "gateway": "10.231.0.1" } ],
    "routes": [ { "dst": "0.0.0.0/0" } ],
    "dns": {}
}`;

test('parseCniResult: a real bridge result', () => {
  assert.equal(parseCniResult(BRIDGE_RESULT, 'bridge'), {
    cniVersion: '1.0.0',
    interfaces: [
      { name: 'vc0', mac: 'e6:c1:85:06:e3:6a' },
      { name: 'vetha4892624', mac: '5e:f3:9c:b2:f8:69' },
      { name: 'eth0', mac: '5a:14:83:0d:98:95', sandbox: '/tmp/nt/pod' },
    ],
    ips: [{ interface: 2, address: '10.231.0.2/16', gateway: '10.231.0.1' }],
    routes: [{ dst: '0.0.0.0/0' }],
    dns: {},
  });
});

test('parseCniResult: IPv6, route fields, dns; missing arrays are empty; unknown fields dropped', () => {
  const r = parseCniResult(JSON.stringify({
    cniVersion: '1.0.0', extra: 1,
    ips: [{ address: 'fd00::2/64', gateway: 'fd00::1' }],
    routes: [{ dst: '::/0', gw: 'fd00::1', mtu: 1400, priority: 5 }],
    dns: { nameservers: ['10.0.0.1'], domain: 'example', search: ['a'], options: ['ndots:2'] },
  }), 'x');
  assert.equal(r.interfaces, []);
  assert.equal(r.routes, [{ dst: '::/0', gw: 'fd00::1', mtu: 1400, priority: 5 }]);
  assert.equal(r.dns, { nameservers: ['10.0.0.1'], search: ['a'], options: ['ndots:2'], domain: 'example' });
});

test('parseCniResult rejects garbage with CNI_PLUGIN_FAILED naming the plugin and the field', () => {
  throws(() => parseCniResult('nope', 'bridge'), 'CNI_PLUGIN_FAILED', /plugin bridge returned an invalid result: not JSON/);
  throws(() => parseCniResult('[]', 'bridge'), 'CNI_PLUGIN_FAILED', /not an object/);
  throws(() => parseCniResult('{}', 'bridge'), 'CNI_PLUGIN_FAILED', /cniVersion missing/);
  throws(() => parseCniResult('{"cniVersion":"1.0.0","ips":{}}', 'b'), 'CNI_PLUGIN_FAILED', /ips is not an array/);
  throws(() => parseCniResult('{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.300/8"}]}', 'b'), 'CNI_PLUGIN_FAILED', /ips\[0\]\.address/);
  throws(() => parseCniResult('{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.3/8","interface":0}]}', 'b'), 'CNI_PLUGIN_FAILED', /ips\[0\]\.interface 0 is not an index/);
  throws(() => parseCniResult('{"cniVersion":"1.0.0","interfaces":[{"mac":"x"}]}', 'b'), 'CNI_PLUGIN_FAILED', /interfaces\[0\]\.name/);
  throws(() => parseCniResult('{"cniVersion":"1.0.0","routes":[{"dst":"default"}]}', 'b'), 'CNI_PLUGIN_FAILED', /routes\[0\]\.dst/);
  throws(() => parseCniResult('{"cniVersion":"1.0.0","dns":{"nameservers":[1]}}', 'b'), 'CNI_PLUGIN_FAILED', /dns\.nameservers/);
});

test('cniPluginError: the plugin\'s error JSON, else its stderr', () => {
  const e1 = cniPluginError('bridge', 'ADD', { code: 1, signal: null, stdout: '{"cniVersion":"1.0.0","code":999,"msg":"failed to find plugin \\"nope\\" in path [/usr/lib/cni]"}', stderr: '' });
  assert.is(e1.code, 'CNI_PLUGIN_FAILED');
  assert.is(e1.message, 'CNI plugin bridge ADD failed (exit 1): failed to find plugin "nope" in path [/usr/lib/cni] [code 999]');
  const e2 = cniPluginError('host-local', 'DEL', { code: 1, signal: null, stdout: '{"code":7,"msg":"bad","details":"more"}', stderr: '' });
  assert.is(e2.message, 'CNI plugin host-local DEL failed (exit 1): bad (more) [code 7]');
  const e3 = cniPluginError('x', 'ADD', { code: null, signal: 'SIGKILL', stdout: '', stderr: 'panic: boom\n' });
  assert.is(e3.message, 'CNI plugin x ADD failed (killed by SIGKILL): panic: boom');
});

test('a missing plugin is NETWORK_UNAVAILABLE naming it, where it was looked for, its package (standard plugins) and --network none', async () => {
  assert.equal(DEFAULT_CNI_PLUGIN_DIRS, ['/usr/lib/cni', '/usr/libexec/cni', '/opt/cni/bin']);
  const conflist = defaultConflist({ dataDir: '/nonexistent/ipam' });
  const attachment = planAttachment('p1', '/nonexistent/netns', conflist);
  // DEL runs without a namespace and looks each plugin up first (the list in reverse): nothing is executed here.
  const err = await cniDel(attachment, { pluginDirs: ['/nonexistent/a', '/nonexistent/b'] }).catch((e: unknown) => e);
  assert.instance(err, VcError);
  assert.is((err as VcError).code, 'NETWORK_UNAVAILABLE');
  assert.is((err as VcError).message, 'CNI plugin bridge not found in /nonexistent/a, /nonexistent/b; install containernetworking-plugins (Debian, Ubuntu, Fedora), or use network none (--network none)');
  const own = planAttachment('p1', '/nonexistent/netns', { ...conflist, plugins: [{ type: 'vc-own-plugin' }] });
  const ownErr = await cniDel(own, { pluginDirs: ['/nonexistent/a'] }).catch((e: unknown) => e);
  assert.is((ownErr as VcError).message, 'CNI plugin vc-own-plugin not found in /nonexistent/a; install it, or use network none (--network none)');
});

test('isCidr', () => {
  for (const good of ['10.0.0.1/8', '0.0.0.0/0', '::/0', 'fd00::1/64', 'FE80::1/128']) assert.ok(isCidr(good), good);
  for (const bad of ['10.0.0.1', '10.0.0/8', '10.0.0.256/8', '10.0.0.1/33', 'x/1', 'fd00::/129', 'default']) assert.not.ok(isCidr(bad), bad);
});

test.run();
