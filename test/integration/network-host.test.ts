// The host side of pod networking (src/network) for real, with no VM: pod namespaces, the CNI
// plugins of /usr/lib/cni, taps and tc redirects. Everything runs inside network namespaces this
// test makes: the plugins run in a test "host" namespace (the bridge vc0 and the veths' host ends
// are made there), never in the root namespace, and traffic goes only between the test's
// namespaces (busybox ping: Debian's ping is not installed here). A test that cannot run says
// `SKIP name: reason`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import {
  cniAdd, cniCheck, cniDel, createNetns, createTaps, defaultConflist, ipamDataDir, ipamLeases, isNetns, planPodNetwork,
  readInterfaces, removeNetns, removeTaps, setUpPodNetwork, tearDownPodNetwork, type NetnsPlan, type PodNetworkPlan,
} from '../../src/network/index.js';
import { native } from '../../src/native.js';
import { VcError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const tmp = tempDir('vcnet');
const root = join(tmp.path, 'root');
const host: NetnsPlan = { path: join(tmp.path, 'hostns'), owned: true };
const made: PodNetworkPlan[] = [];
const CNI_DIR = '/usr/lib/cni';

/** Why this host cannot run these tests, or undefined. */
function whyNot(): string | undefined {
  for (const tool of ['ip', 'tc', 'nsenter', 'unshare', 'umount', 'busybox']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (!existsSync(join(CNI_DIR, 'bridge')) || !existsSync(join(CNI_DIR, 'host-local'))) return `no CNI plugins in ${CNI_DIR} (containernetworking-plugins)`;
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for the namespace mounts)';
  const probe = join(tmp.path, 'probe');
  writeFileSync(probe, '');
  const r = spawnSync('unshare', [`--net=${probe}`, 'true'], { encoding: 'utf8' });
  if (r.status !== 0) return `unshare --net cannot make a persistent namespace here: ${r.stderr.trim()}`;
  spawnSync('umount', [probe]);
  return undefined;
}
const skip = whyNot();
/** The root namespace's links and routes, read only: compared at the end, never changed. */
function rootNetwork(): string {
  return ['link', 'route', '-6 route'].map((what) => spawnSync('sh', ['-c', `ip -o ${what} show | sed 's/ \\(RX\\|TX\\).*//'`], { encoding: 'utf8' }).stdout).join('');
}
const rootBefore = skip ? '' : rootNetwork();

/** `argv` inside the namespace `netns`, checked; stdout. */
function inNs(netns: string, ...argv: string[]): string {
  const r = spawnSync('nsenter', [`--net=${netns}`, '--', ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in ${netns}: ${r.stderr}`);
  return r.stdout;
}
function links(netns: string): { ifname: string; link_type: string; linkinfo?: { info_kind?: string } }[] {
  return JSON.parse(inNs(netns, 'ip', '-j', '-d', 'link', 'show'));
}
function ping(netns: string, address: string, waitS = 2): boolean {
  return spawnSync('nsenter', [`--net=${netns}`, '--', 'busybox', 'ping', '-c', '1', '-W', String(waitS), address]).status === 0;
}
/** Lease files host-local left (any name that is an IP address). */
function leases(): string[] {
  const dir = join(ipamDataDir(root), 'virtcontainers');
  return existsSync(dir) ? readdirSync(dir).filter((n) => isIP(n) !== 0) : [];
}
/** The host namespace's links besides lo and the bridge: veth host ends left behind. */
function hostVeths(): string[] {
  return links(host.path).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
}
function plan(podId: string, conflist = defaultConflist({ dataDir: ipamDataDir(root) })): PodNetworkPlan {
  const podDir = join(root, 'pods', podId);
  mkdirSync(podDir, { recursive: true });
  const p = planPodNetwork({ root, podId, podDir, network: { mode: 'bridge', conflist }, hostNetns: host.path });
  made.push(p);
  return p;
}
async function expectUnavailable(p: Promise<unknown>): Promise<void> {
  const err = await p.catch((e: unknown) => e);
  assert.is((err as VcError).code, 'NETWORK_UNAVAILABLE', String(err));
}
function ipv4(addresses: string[]): string {
  const a = addresses.find((x) => !x.includes(':'));
  assert.ok(a, `no IPv4 address in ${JSON.stringify(addresses)}`);
  return a!.split('/')[0]!;
}
function t(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    if (skip) { console.log(`\nSKIP ${name}: ${skip}`); return; }
    const started = Date.now();
    await fn();
    console.log(`  ${name}: ${Date.now() - started} ms`);
  });
}

test.before(async () => {
  if (!skip) await createNetns(host);
});

test.after(async () => {
  for (const p of made) await tearDownPodNetwork(p).catch((err) => console.log('cleanup:', err));
  if (!skip) await removeNetns(host).catch((err) => console.log('cleanup:', err));
  tmp.remove();
});

t('bridge: ADD gives eth0 an address of 10.231.0.0/16 and a default route via vc0, CHECK agrees; two pods reach each other by ICMP across vc0', async () => {
  const a = plan('pa');
  const b = plan('pb');
  // Without taps first: with the tc redirects in place, frames on eth0 go to a tap no VM reads.
  const ra = await setUpPodNetwork({ ...a, taps: undefined });
  const rb = await setUpPodNetwork({ ...b, taps: undefined });
  assert.ok(await isNetns(a.netns!.path), 'pod netns mounted at <podDir>/netns');
  assert.is(a.netns!.path, join(root, 'pods', 'pa', 'netns'));
  const ia = await readInterfaces(a.netns!.path);
  const ib = await readInterfaces(b.netns!.path);
  assert.is(ia.length, 1);
  assert.is(ia[0]!.name, 'eth0');
  const addrA = ipv4(ia[0]!.addresses);
  const addrB = ipv4(ib[0]!.addresses);
  assert.match(ia[0]!.addresses.join(), /^10\.231\.\d+\.\d+\/16/);
  assert.match(ib[0]!.addresses.join(), /^10\.231\.\d+\.\d+\/16/);
  assert.is.not(addrA, addrB);
  assert.ok(ia[0]!.routes.some((r) => r.dst === '0.0.0.0/0' && r.gateway === '10.231.0.1'), JSON.stringify(ia[0]!.routes));
  assert.ok(ra.cniResult!.ips.some((ip) => ip.address === `${addrA}/16` && ip.gateway === '10.231.0.1'));
  assert.ok(rb.cniResult!.interfaces.some((i) => i.name === 'eth0' && i.sandbox === b.netns!.path));
  assert.equal(links(host.path).filter((l) => l.ifname === 'vc0').length, 1, 'vc0 is in the test host netns');
  assert.equal(leases().sort(), [addrA, addrB].sort());
  assert.equal((await ipamLeases(ipamDataDir(root), 'virtcontainers')).map((l) => `${l.containerId} ${l.ifName} ${l.address}`).sort(), [`pa eth0 ${addrA}`, `pb eth0 ${addrB}`].sort());
  await cniCheck(a.cni!, ra.cniResult!, { hostNetns: host.path });
  assert.ok(ping(a.netns!.path, addrB), `ping ${addrB} from pod a`);
  assert.ok(ping(b.netns!.path, addrA), `ping ${addrA} from pod b`);
  assert.ok(ping(host.path, addrA), `ping ${addrA} from the host netns (the gateway)`);
});

t('taps: one tapN_vc per addressed interface with its MTU, ingress qdiscs and mirred redirects both ways; frames for the pod go to the tap', async () => {
  const [a, b] = made as [PodNetworkPlan, PodNetworkPlan];
  const ifaces = await createTaps(a.taps!);
  assert.is(ifaces.length, 1);
  const [eth0] = ifaces as [typeof ifaces[0]];
  assert.is(eth0.tap, 'tap0_vc');
  const ns = a.netns!.path;
  const all = JSON.parse(inNs(ns, 'ip', '-j', '-d', 'link', 'show')) as { ifname: string; mtu: number; address: string; linkinfo?: { info_kind?: string; info_data?: { type?: string } } }[];
  const tap = all.find((l) => l.ifname === 'tap0_vc')!;
  const veth = all.find((l) => l.ifname === 'eth0')!;
  assert.is(tap.linkinfo?.info_data?.type, 'tap');
  assert.is(tap.mtu, veth.mtu);
  assert.is(eth0.mtu, veth.mtu);
  assert.is(eth0.mac, veth.address, 'the VM NIC takes the veth MAC');
  for (const [from, to] of [['eth0', 'tap0_vc'], ['tap0_vc', 'eth0']]) {
    const filters = JSON.parse(inNs(ns, 'tc', '-j', 'filter', 'show', 'dev', from!, 'ingress')) as { options?: { actions?: { kind: string; to_dev: string; mirred_action: string; direction: string }[] } }[];
    const action = filters.flatMap((f) => f.options?.actions ?? [])[0];
    assert.equal(action && { kind: action.kind, to: action.to_dev, what: action.mirred_action, dir: action.direction }, { kind: 'mirred', to, what: 'redirect', dir: 'egress' }, `${from} → ${to}`);
  }
  // A ping to pod a's address now arrives on its eth0 and is redirected to tap0_vc (no VM reads it).
  const addrA = ipv4(eth0.addresses);
  assert.not.ok(ping(b.netns!.path, addrA, 1), 'the redirected ICMP must not be answered by the netns itself');
  const stats = JSON.parse(inNs(ns, 'tc', '-s', '-j', 'filter', 'show', 'dev', 'eth0', 'ingress')) as { options?: { actions?: { stats?: { packets?: number } }[] } }[];
  const packets = stats.flatMap((f) => f.options?.actions ?? []).reduce((n, act) => n + (act.stats?.packets ?? 0), 0);
  assert.ok(packets > 0, `the eth0 → tap0_vc redirect counted ${packets} packets`);
  // createTaps again (a start re-run after a crash) sweeps and remakes: still one tap.
  await createTaps(a.taps!);
  assert.equal(links(ns).filter((l) => /^tap\d+_vc$/.test(l.ifname)).map((l) => l.ifname), ['tap0_vc']);
});

t('teardown: removeTaps leaves no tap or filter; DEL + netns removal leave no netns, veth or lease; DEL twice is fine', async () => {
  const [a, b] = made as [PodNetworkPlan, PodNetworkPlan];
  await removeTaps(a.taps!);
  assert.equal(links(a.netns!.path).filter((l) => /_vc$/.test(l.ifname)), []);
  assert.is(inNs(a.netns!.path, 'tc', 'qdisc', 'show', 'dev', 'eth0').includes('ingress'), false);
  await tearDownPodNetwork(a);
  await tearDownPodNetwork(b);
  for (const p of [a, b]) {
    assert.not.ok(existsSync(p.netns!.path), `${p.netns!.path} removed`);
    assert.not.ok(await isNetns(p.netns!.path));
  }
  assert.equal(hostVeths(), []);
  assert.equal(leases(), []);
  await tearDownPodNetwork(a);
  await cniDel(a.cni!, { hostNetns: host.path });
  assert.not.ok(spawnSync('grep', ['-q', root, '/proc/self/mountinfo']).status === 0, 'no mount under the root is left');
});

t('DEL after a half-done ADD (a later plugin of the chain failed) releases the lease and the veth', async () => {
  // tuning fails its ADD on a sysctl that does not exist, after bridge made the veth and leased an address.
  const conflist = defaultConflist({ dataDir: ipamDataDir(root) });
  conflist.plugins.splice(1, 0, { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.vc_no_such_sysctl': '1' } });
  const p = plan('half', conflist);
  const err = await setUpPodNetwork(p, { pluginDirs: [CNI_DIR] }).catch((e: unknown) => e);
  assert.instance(err, VcError);
  assert.is((err as VcError).code, 'CNI_PLUGIN_FAILED');
  assert.match((err as VcError).message, /CNI plugin tuning ADD failed/);
  assert.is(leases().length, 1, 'the bridge plugin leased an address before the chain failed');
  assert.is(hostVeths().length, 1);
  await tearDownPodNetwork(p);
  assert.equal(leases(), []);
  assert.equal(hostVeths(), []);
  assert.not.ok(existsSync(p.netns!.path));
});

t('a plugin missing at DEL fails the teardown, yet the other plugins\' DEL and the netns removal still run', async () => {
  const conflist = defaultConflist({ dataDir: ipamDataDir(root) });
  conflist.plugins.push({ type: 'vc-no-such-plugin' });
  const p = plan('missing', conflist);
  const err = await setUpPodNetwork(p).catch((e: unknown) => e);
  assert.is((err as VcError).code, 'NETWORK_UNAVAILABLE');
  assert.match((err as VcError).message, /vc-no-such-plugin not found in \/usr\/lib\/cni/);
  assert.is(leases().length, 1);
  const teardown = await tearDownPodNetwork(p).catch((e: unknown) => e);
  assert.is((teardown as VcError).code, 'NETWORK_UNAVAILABLE');
  assert.equal(leases(), []);
  assert.equal(hostVeths(), []);
  assert.not.ok(existsSync(p.netns!.path));
  made.splice(made.indexOf(p), 1);
});

t('an ADD aborted at a random point, and a netns file left unmounted by a crash, tear down to nothing', async () => {
  for (const delay of [5, 40, 120]) {
    const p = plan(`abort${delay}`);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('test')), delay);
    await setUpPodNetwork(p, { signal: controller.signal }).catch(() => {});
    await tearDownPodNetwork(p);
    assert.equal(leases(), [], `after an abort at ${delay} ms`);
    assert.equal(hostVeths(), []);
    assert.not.ok(existsSync(p.netns!.path));
  }
  const p = plan('crashfile');
  writeFileSync(p.netns!.path, ''); // the mount point made, the mount not
  await tearDownPodNetwork(p);
  assert.not.ok(existsSync(p.netns!.path));
});

t('a plugin error is CNI_PLUGIN_FAILED naming the plugin and its message', async () => {
  const conflist = defaultConflist({ dataDir: ipamDataDir(root) });
  (conflist.plugins[0]!.ipam as { type: string }).type = 'vc-no-ipam';
  const p = plan('plugerr', conflist);
  await createNetns(p.netns!);
  const err = await cniAdd(p.cni!, { hostNetns: host.path }).catch((e: unknown) => e);
  assert.instance(err, VcError);
  assert.is((err as VcError).code, 'CNI_PLUGIN_FAILED');
  assert.match((err as VcError).message, /CNI plugin bridge ADD failed/);
  assert.match((err as VcError).message, /vc-no-ipam/);
  const teardown = await tearDownPodNetwork(p).catch((e: unknown) => e); // DEL of a bad IPAM fails too; the netns still goes
  assert.match((teardown as VcError).message, /CNI plugin bridge DEL failed/);
  assert.not.ok(existsSync(p.netns!.path));
  made.splice(made.indexOf(p), 1);
});

t('netns mode: taps and filters in the caller\'s namespace, removed at teardown; the namespace is left alone', async () => {
  const given: NetnsPlan = { path: join(tmp.path, 'givenns'), owned: true };
  await createNetns(given);
  try {
    inNs(host.path, 'ip', 'link', 'add', 'vcpeer0', 'type', 'veth', 'peer', 'name', 'eth7', 'netns', given.path);
    inNs(given.path, 'ip', 'link', 'set', 'eth7', 'mtu', '1400');
    inNs(given.path, 'ip', 'addr', 'add', '192.0.2.10/24', 'dev', 'eth7');
    inNs(given.path, 'ip', 'link', 'set', 'eth7', 'up');
    inNs(given.path, 'ip', 'route', 'add', 'default', 'via', '192.0.2.1');
    inNs(host.path, 'ip', 'link', 'add', 'vcpeer1', 'type', 'veth', 'peer', 'name', 'eth8', 'netns', given.path); // no address: not mirrored
    inNs(given.path, 'ip', 'link', 'set', 'eth8', 'up');
    const podDir = join(root, 'pods', 'given');
    mkdirSync(podDir, { recursive: true });
    const p = planPodNetwork({ root, podId: 'given', podDir, network: { mode: 'netns', path: given.path } });
    assert.equal(p.netns, { path: given.path, owned: false });
    assert.is(p.cni, undefined);
    const r = await setUpPodNetwork(p);
    assert.is(r.interfaces.length, 1);
    const [i] = r.interfaces as [typeof r.interfaces[0]];
    assert.equal({ name: i.name, tap: i.tap, mtu: i.mtu, addresses: i.addresses }, { name: 'eth7', tap: 'tap0_vc', mtu: 1400, addresses: ['192.0.2.10/24'] });
    assert.ok(i.routes.some((rt) => rt.dst === '0.0.0.0/0' && rt.gateway === '192.0.2.1'));
    await tearDownPodNetwork(p);
    assert.ok(await isNetns(given.path), 'the caller\'s namespace stays');
    assert.equal(links(given.path).filter((l) => /_vc$/.test(l.ifname)), []);
    assert.is(inNs(given.path, 'tc', 'qdisc', 'show', 'dev', 'eth7').includes('ingress'), false);
  } finally {
    await removeNetns(given);
  }
  // The kernel dismantles an unused namespace (and with it the veths' peers) asynchronously.
  await waitFor('the veth peers to go with the namespace', () => hostVeths().length === 0, 5000);
});

t('createNetns brings lo up inside the new namespace; again on a made one it is kept; removeNetns takes off stacked mounts', async () => {
  const ns: NetnsPlan = { path: join(tmp.path, 'lons'), owned: true };
  try {
    await createNetns(ns);
    const lo = () => (JSON.parse(inNs(ns.path, 'ip', '-j', 'link', 'show', 'lo')) as { flags: string[] }[])[0]!.flags;
    assert.ok(lo().includes('UP'), `lo flags ${lo().join(',')}`);
    const inode = statSync(ns.path).ino;
    assert.is.not(inode, statSync('/proc/self/ns/net').ino, 'a namespace of its own, not ours');
    await createNetns(ns); // a start re-run after a crash: the namespace is kept
    assert.is(statSync(ns.path).ino, inode, 'the same namespace after the re-run');
    // A mount stacked on it (as a crash between two runs of an older set-up could leave): both go.
    const stacked = spawnSync('mount', ['--bind', ns.path, ns.path], { encoding: 'utf8' });
    assert.is(stacked.status, 0, stacked.stderr);
    await removeNetns(ns);
    assert.not.ok(existsSync(ns.path));
    assert.not.ok(await isNetns(ns.path));
    await removeNetns(ns); // again: nothing left, no error
  } finally {
    await removeNetns(ns);
  }
});

t('the addon\'s taps: a failure names the step and the kernel\'s words; what it made stays for the sweep', async () => {
  const ns: NetnsPlan = { path: join(tmp.path, 'mirrorns'), owned: true };
  await createNetns(ns);
  try {
    inNs(ns.path, 'ip', 'link', 'add', 'vcd0', 'type', 'veth', 'peer', 'name', 'vcd1');
    inNs(ns.path, 'ip', 'addr', 'add', '10.9.0.2/24', 'dev', 'vcd0');
    // No such interface: nothing is made.
    const missing = await Promise.resolve().then(() => native().makeTapMirrors(ns.path, [{ interface: 'vc-none', tap: 'tap5_vc', mtu: 1500 }])).catch((e: unknown) => e);
    assert.match((missing as Error).message, /^find interface vc-none: No such device/);
    assert.equal(links(ns.path).filter((l) => l.ifname === 'tap5_vc'), []);
    // An MTU the tap refuses: the kernel's extended ack is in the message; the tap it made is left.
    const mtu = await Promise.resolve().then(() => native().makeTapMirrors(ns.path, [{ interface: 'vcd0', tap: 'tap5_vc', mtu: 99999 }])).catch((e: unknown) => e);
    assert.match((mtu as Error).message, /^set tap5_vc mtu 99999 \(mtu greater than device maximum\): Invalid argument/);
    assert.equal(links(ns.path).filter((l) => l.ifname === 'tap5_vc').length, 1);
    // createTaps sweeps it and makes the whole mirror; a namespace that is not one is named.
    const [iface] = await createTaps({ netns: ns.path });
    assert.is(iface!.name, 'vcd0');
    assert.match(inNs(ns.path, 'tc', 'filter', 'show', 'dev', 'vcd0', 'ingress'), /Egress Redirect to device tap0_vc/);
    assert.match(inNs(ns.path, 'tc', 'filter', 'show', 'dev', 'tap0_vc', 'ingress'), /Egress Redirect to device vcd0/);
    assert.equal(links(ns.path).filter((l) => l.ifname === 'tap5_vc').length, 0, 'the left tap swept');
    const notNs = await Promise.resolve().then(() => native().makeTapMirrors(tmp.path, [])).catch((e: unknown) => e);
    assert.match((notNs as Error).message, /^setns in network namespace .* \(not a network namespace file\?\): Invalid argument$/);
  } finally {
    await removeTaps({ netns: ns.path });
    await removeNetns(ns);
  }
});

t('readInterfaces reads a real namespace as `ip` shows it: addressed links, global addresses, main-table unicast routes', async () => {
  const ns: NetnsPlan = { path: join(tmp.path, 'readns'), owned: true };
  await createNetns(ns);
  try {
    for (const line of [
      'link add vcr0 type veth peer name vcr1', 'addr add 10.9.0.2/24 dev vcr0', 'addr add fd00::2/64 dev vcr0 nodad',
      'link set vcr0 up', 'link set vcr1 up', 'route add default via 10.9.0.1', '-6 route add default via fd00::1 dev vcr0',
      'route add 10.50.0.0/16 dev vcr0 scope link src 10.9.0.2 proto static', 'route add blackhole 10.60.0.0/16',
      'route add 10.70.0.0/16 via 10.9.0.1 table 100',
    ]) inNs(ns.path, 'ip', ...line.split(' '));
    const mac = (JSON.parse(inNs(ns.path, 'ip', '-j', 'link', 'show', 'vcr0')) as { address: string }[])[0]!.address;
    assert.equal(readInterfaces(ns.path), [{
      name: 'vcr0', tap: 'tap0_vc', mac, mtu: 1500,
      addresses: ['10.9.0.2/24', 'fd00::2/64'],
      routes: [
        { dst: '0.0.0.0/0', gateway: '10.9.0.1', dev: 'vcr0', family: 4 },
        { dst: '10.9.0.0/24', dev: 'vcr0', family: 4, scope: 'link', protocol: 'kernel', source: '10.9.0.2' },
        { dst: '10.50.0.0/16', dev: 'vcr0', family: 4, scope: 'link', protocol: 'static', source: '10.9.0.2' },
        { dst: 'fd00::/64', dev: 'vcr0', family: 6, protocol: 'kernel' },
        { dst: '::/0', gateway: 'fd00::1', dev: 'vcr0', family: 6 },
      ],
    }]);
    assert.throws(() => readInterfaces(join(tmp.path, 'no-such-ns')), (e: unknown) => e instanceof VcError && e.code === 'NETWORK_FAILED' && /cannot open network namespace .*no-such-ns: No such file or directory/.test(e.message));
  } finally {
    await removeNetns(ns);
  }
});

t('createTaps over a bare ingress qdisc and a tap a crash left: swept, and the taps and redirects made whole', async () => {
  const given: NetnsPlan = { path: join(tmp.path, 'crashns'), owned: true };
  await createNetns(given);
  try {
    inNs(host.path, 'ip', 'link', 'add', 'vcpeer2', 'type', 'veth', 'peer', 'name', 'eth3', 'netns', given.path);
    inNs(given.path, 'ip', 'addr', 'add', '192.0.2.20/24', 'dev', 'eth3');
    inNs(given.path, 'ip', 'link', 'set', 'eth3', 'up');
    inNs(given.path, 'tc', 'qdisc', 'add', 'dev', 'eth3', 'ingress'); // the qdisc added, its filter not
    inNs(given.path, 'ip', 'tuntap', 'add', 'dev', 'tap0_vc', 'mode', 'tap'); // the tap made, its MTU not set
    const ifaces = await createTaps({ netns: given.path });
    assert.equal(ifaces.map((i) => [i.name, i.tap]), [['eth3', 'tap0_vc']]);
    assert.equal(links(given.path).filter((l) => /_vc$/.test(l.ifname)).map((l) => l.ifname), ['tap0_vc']);
    for (const [from, to] of [['eth3', 'tap0_vc'], ['tap0_vc', 'eth3']]) {
      const filters = JSON.parse(inNs(given.path, 'tc', '-j', 'filter', 'show', 'dev', from!, 'ingress')) as { options?: { actions?: { to_dev: string }[] } }[];
      assert.equal(filters.flatMap((f) => f.options?.actions ?? []).map((a) => a.to_dev), [to], `${from} → ${to}`);
    }
    await removeTaps({ netns: given.path });
    assert.equal(links(given.path).filter((l) => /_vc$/.test(l.ifname)), []);
    assert.is(inNs(given.path, 'tc', 'qdisc', 'show', 'dev', 'eth3').includes('ingress'), false);
  } finally {
    await removeNetns(given);
  }
  await waitFor('the veth peer to go with the namespace', () => hostVeths().length === 0, 5000);
});

t('the root namespace\'s links and routes are as before the tests', async () => {
  assert.fixture(rootNetwork(), rootBefore);
});

test.run();
