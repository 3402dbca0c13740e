// Kata's "tcfilter" mode on the host side: for each interface of the pod's network namespace that
// has an address (a veth from CNI, or whatever a caller's namespace holds), a tap `tapN_vc` in the
// same namespace with the interface's MTU, an ingress qdisc on both, and a u32 match-all filter on
// each redirecting every frame to the other's egress (`action mirred egress redirect`). The VM's
// NIC on tap N takes the veth's MAC, so the veth's peer sees the VM as the veth itself: no bridge,
// no NAT, no address change. The interface's addresses and routes are read here (by the addon,
// over rtnetlink: what `ip -d addr` and `ip route` show) and become what the guest agent is told.
//
// Crash-only: the taps are named by their index (`tap0_vc`, `tap1_vc`, …) in a namespace the
// record already names, so the record to write BEFORE `createTaps` is just the namespace path
// (`TapPlan`); `removeTaps` sweeps every `tapN_vc` there and every ingress qdisc whose filter
// redirects to one, whatever part of `createTaps` ran. `createTaps` sweeps first, so it can be
// run again after a crash.
import type { PodInterface, PodRoute, TapPlan } from '../model/network.js';
import type { NetnsView } from '../native.js';
export type { PodInterface, PodRoute, TapPlan } from '../model/network.js';
import { VcError } from '../errors.js';
import { native } from '../native.js';
import { isNetns } from './netns.js';

export const TAP_NAME = /^tap\d+_vc$/;
export function tapName(index: number): string {
  return `tap${index}_vc`;
}

/** RTN_UNICAST, RT_SCOPE_UNIVERSE, RTPROT_BOOT, RTPROT_KERNEL (linux/rtnetlink.h). */
const RTN_UNICAST = 1;
const RT_SCOPE_UNIVERSE = 0;
const RTPROT_BOOT = 3;
const RTPROT_KERNEL = 2;
/** The names `ip` gives route scopes and protocols (iproute2's rt_scopes and rt_protos). */
const SCOPE_NAMES: Readonly<Record<number, string>> = { 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };
const PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 8: 'gated', 9: 'ra', 10: 'mrt', 11: 'zebra', 12: 'bird',
  13: 'dnrouted', 14: 'xorp', 15: 'ntk', 16: 'dhcp', 18: 'keepalived', 42: 'babel', 99: 'openr', 186: 'bgp', 187: 'isis',
  188: 'ospf', 189: 'rip', 192: 'eigrp',
};

/**
 * The interfaces to mirror, from the namespace as the kernel lists it (`native().readNetns`):
 * every ethernet link but our taps with a global address, in ifindex order, with the taps they
 * will get, and the main table's unicast routes through each, named as `ip route` names them.
 * Pure (unit-tested on a made-up namespace; the integration test reads a real one).
 */
export function interfacesOf(view: NetnsView): PodInterface[] {
  const names = new Map(view.links.map((l) => [l.index, l.name]));
  const routes = view.routes.map((r) => toRoute(r, names.get(r.oif))).filter((r): r is PodRoute => r !== undefined);
  return view.links
    .filter((l) => l.ether && !TAP_NAME.test(l.name))
    .map((link) => ({
      link,
      addresses: view.addresses.filter((a) => a.index === link.index && a.scope === RT_SCOPE_UNIVERSE).map((a) => `${a.address}/${a.prefix}`),
    }))
    .filter((m) => m.addresses.length > 0)
    .sort((a, b) => a.link.index - b.link.index)
    .map((m, i) => ({
      name: m.link.name,
      tap: tapName(i),
      mac: m.link.mac,
      mtu: m.link.mtu || 1500,
      addresses: m.addresses,
      routes: routes.filter((r) => r.dev === m.link.name),
    }));
}

function toRoute(r: NetnsView['routes'][number], dev: string | undefined): PodRoute | undefined {
  if (dev === undefined) return undefined; // through no link (blackhole, unreachable) or several
  if (r.type !== RTN_UNICAST) return undefined;
  if (r.family === 6 && r.protocol === RTPROT_KERNEL && r.dst.toLowerCase().startsWith('fe80:')) return undefined;
  const dst = r.dstLen === 0 ? (r.family === 4 ? '0.0.0.0/0' : '::/0') : `${r.dst}/${r.dstLen}`;
  const route: PodRoute = { dst, dev, family: r.family };
  if (r.gateway !== '') route.gateway = r.gateway;
  if (r.scope !== RT_SCOPE_UNIVERSE) route.scope = SCOPE_NAMES[r.scope] ?? String(r.scope);
  if (r.protocol !== RTPROT_BOOT) route.protocol = PROTOCOL_NAMES[r.protocol] ?? String(r.protocol);
  if (r.source !== '') route.source = r.source;
  return route;
}

/** The interfaces of a namespace that `createTaps` would mirror, from one read by the addon. */
export function readInterfaces(netns: string): PodInterface[] {
  try {
    return interfacesOf(native().readNetns(netns));
  } catch (err) {
    throw new VcError('NETWORK_FAILED', `cannot read network namespace ${netns}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Makes a tap per mirrored interface of `plan.netns` with its MTU and the tc redirects both ways;
 * returns the interfaces (what the guest agent is told; `tap` is what the VMM opens, inside the
 * namespace). Sweeps first, so running it again after a crash is fine. No interface: [].
 * The namespace is read once (for the sweep and the interfaces: taps are never mirrored), then
 * the addon makes the taps, qdiscs and filters over rtnetlink on a thread in the namespace: no
 * `ip` or `tc` process (each spawn cost 0.1–0.5 s in the nested harness's L1).
 */
export async function createTaps(plan: TapPlan, options: { signal?: AbortSignal } = {}): Promise<PodInterface[]> {
  const { netns } = plan;
  sweep(netns);
  const interfaces = readInterfaces(netns);
  options.signal?.throwIfAborted();
  try {
    native().makeTapMirrors(netns, interfaces.map((i) => ({ interface: i.name, tap: i.tap, mtu: i.mtu })));
  } catch (err) {
    throw new VcError('NETWORK_FAILED', `cannot make the taps and redirects in ${netns}: ${(err as Error).message}`, { cause: err });
  }
  return interfaces;
}

/**
 * Undoes `createTaps` in `plan.netns`, whatever part of it ran: the ingress qdisc (and with it the
 * filter) of every link redirecting to a `tapN_vc`, then every `tapN_vc` (the addon, over
 * rtnetlink). A namespace that is gone has nothing left to undo. Idempotent.
 */
export async function removeTaps(plan: TapPlan): Promise<void> {
  // A namespace that is gone (file missing or no longer nsfs) has nothing left.
  if (!(await isNetns(plan.netns))) return;
  sweep(plan.netns);
}

/** The addon's sweep of our taps and the qdiscs redirecting to them, as NETWORK_FAILED when it fails. */
function sweep(netns: string): void {
  try {
    native().sweepTapMirrors(netns);
  } catch (err) {
    throw new VcError('NETWORK_FAILED', `cannot remove the taps and redirects in ${netns}: ${(err as Error).message}`, { cause: err });
  }
}
