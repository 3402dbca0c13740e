// Kata's "tcfilter" mode on the host side: for each interface of the pod's network namespace that
// has an address (a veth from CNI, or whatever a caller's namespace holds), a tap `tapN_vc` in the
// same namespace with the interface's MTU, an ingress qdisc on both, and a u32 match-all filter on
// each redirecting every frame to the other's egress (`action mirred egress redirect`). The VM's
// NIC on tap N takes the veth's MAC, so the veth's peer sees the VM as the veth itself: no bridge,
// no NAT, no address change. The interface's addresses and routes are read here
// (`ip -j -d addr/route` in the namespace) and become what the guest agent is told.
//
// Crash-only: the taps are named by their index (`tap0_vc`, `tap1_vc`, …) in a namespace the
// record already names, so the record to write BEFORE `createTaps` is just the namespace path
// (`TapPlan`); `removeTaps` sweeps every `tapN_vc` there and every ingress qdisc whose filter
// redirects to one, whatever part of `createTaps` ran. `createTaps` sweeps first, so it can be
// run again after a crash.
import type { PodInterface, PodRoute, TapPlan } from '../model/network.js';
export type { PodInterface, PodRoute, TapPlan } from '../model/network.js';
import { VcError } from '../errors.js';
import { run, runAllChecked, runBatch, runChecked, describe, exitText, type BatchCommand } from './exec.js';
import { isNetns } from './netns.js';

export const TAP_NAME = /^tap\d+_vc$/;
export function tapName(index: number): string {
  return `tap${index}_vc`;
}

interface IpAddrInfo { family?: string; local?: string; prefixlen?: number; scope?: string }
interface IpLink { ifindex?: number; ifname?: string; link_type?: string; address?: string; mtu?: number; addr_info?: IpAddrInfo[] }
interface IpRoute { dst?: string; gateway?: string; dev?: string; scope?: string; protocol?: string; prefsrc?: string; type?: string }

/**
 * The interfaces to mirror, from `ip -j -d addr show` and `ip -j route show` (v4 and v6) in the
 * namespace: every ethernet link but our taps with a global address, in ifindex order, with the
 * taps they will get. Pure (unit-tested on captured output).
 */
export function interfacesFrom(addrJson: string, routes4Json: string, routes6Json: string): PodInterface[] {
  const links = parseJsonArray<IpLink>(addrJson, 'ip -j addr');
  const mirrored = links
    .filter((l) => l.link_type === 'ether' && typeof l.ifname === 'string' && !TAP_NAME.test(l.ifname))
    .map((l) => ({
      link: l,
      addresses: (l.addr_info ?? [])
        .filter((a) => (a.family === 'inet' || a.family === 'inet6') && a.scope === 'global' && a.local !== undefined && a.prefixlen !== undefined)
        .map((a) => `${a.local}/${a.prefixlen}`),
    }))
    .filter((m) => m.addresses.length > 0)
    .sort((a, b) => (a.link.ifindex ?? 0) - (b.link.ifindex ?? 0));
  const routes = [
    ...parseJsonArray<IpRoute>(routes4Json, 'ip -j route').map((r) => toRoute(r, 4)),
    ...parseJsonArray<IpRoute>(routes6Json, 'ip -j -6 route').map((r) => toRoute(r, 6)),
  ].filter((r): r is PodRoute => r !== undefined);
  return mirrored.map((m, i) => ({
    name: m.link.ifname!,
    tap: tapName(i),
    mac: m.link.address ?? '',
    mtu: m.link.mtu ?? 1500,
    addresses: m.addresses,
    routes: routes.filter((r) => r.dev === m.link.ifname),
  }));
}

function toRoute(r: IpRoute, family: 4 | 6): PodRoute | undefined {
  if (r.dev === undefined || r.dst === undefined) return undefined;
  if (r.type !== undefined && r.type !== 'unicast') return undefined; // blackhole, unreachable, multicast…
  if (family === 6 && r.protocol === 'kernel' && r.dst.toLowerCase().startsWith('fe80:')) return undefined;
  let dst = r.dst;
  if (dst === 'default') dst = family === 4 ? '0.0.0.0/0' : '::/0';
  else if (!dst.includes('/')) dst = `${dst}/${family === 4 ? 32 : 128}`;
  const route: PodRoute = { dst, dev: r.dev, family };
  if (r.gateway !== undefined) route.gateway = r.gateway;
  if (r.scope !== undefined) route.scope = r.scope;
  if (r.protocol !== undefined) route.protocol = r.protocol;
  if (r.prefsrc !== undefined) route.source = r.prefsrc;
  return route;
}

function parseJsonArray<T>(text: string, what: string): T[] {
  try {
    const value: unknown = JSON.parse(text.trim() || '[]');
    if (Array.isArray(value)) return value as T[];
  } catch {
    // below
  }
  throw new VcError('NETWORK_FAILED', `\`${what}\` printed no JSON array: ${JSON.stringify(text.slice(0, 200))}`);
}

/** The interfaces of a namespace that `createTaps` would mirror (reads only). */
export async function readInterfaces(netns: string, signal?: AbortSignal): Promise<PodInterface[]> {
  return (await readNamespace(netns, signal)).interfaces;
}

/** The interfaces to mirror and every link's name, from one set of reads (three `ip -j` in one spawn). */
async function readNamespace(netns: string, signal?: AbortSignal): Promise<{ interfaces: PodInterface[]; links: string[] }> {
  const [addr, r4, r6] = await runAllChecked([
    ['ip', '-j', '-d', 'addr', 'show'],
    ['ip', '-j', '-4', 'route', 'show'],
    ['ip', '-j', '-6', 'route', 'show'],
  ], { netns, signal }) as [string, string, string];
  const links = parseJsonArray<IpLink>(addr, 'ip -j addr').map((l) => l.ifname).filter((n): n is string => typeof n === 'string');
  return { interfaces: interfacesFrom(addr, r4, r6), links };
}

/** The u32 match-all filter that moves every frame arriving on `from` out of `to`. */
export function redirectFilter(from: string, to: string): string[] {
  return ['tc', 'filter', 'add', 'dev', from, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u8', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', to];
}

/**
 * Makes a tap per mirrored interface of `plan.netns` with its MTU and the tc redirects both ways;
 * returns the interfaces (what the guest agent is told; `tap` is what the VMM opens, inside the
 * namespace). Sweeps first, so running it again after a crash is fine. No interface: [].
 * The namespace is read once (for the sweep and the interfaces: taps are never mirrored), then
 * the taps are made by one `ip -batch` and their qdiscs and filters by one `tc -batch`: each
 * spawn cost 0.1–0.5 s in the nested harness's L1, and there were 15 of them per interface.
 */
export async function createTaps(plan: TapPlan, options: { signal?: AbortSignal } = {}): Promise<PodInterface[]> {
  const { netns } = plan;
  const signal = options.signal;
  const { interfaces, links } = await readNamespace(netns, signal);
  await sweepTaps(netns, links);
  await runBatch('ip', interfaces.flatMap(tapCommands), { netns, signal });
  await runBatch('tc', interfaces.flatMap(redirectCommands), { netns, signal });
  return interfaces;
}

/** `ip` commands (without `ip`) that make the tap of `iface`, with its MTU, up. */
export function tapCommands(iface: PodInterface): BatchCommand[] {
  return [
    { args: ['tuntap', 'add', 'dev', iface.tap, 'mode', 'tap'] },
    { args: ['link', 'set', 'dev', iface.tap, 'mtu', String(iface.mtu)] },
    // No IPv6 link-local address (and so no router solicitations or DAD) of the tap's own to the
    // VM. Fails where IPv6 is off, which changes nothing then.
    { args: ['link', 'set', 'dev', iface.tap, 'addrgenmode', 'none'], mayFail: true },
    { args: ['link', 'set', 'dev', iface.tap, 'up'] },
  ];
}

/** `tc` commands (without `tc`) that redirect every frame between `iface` and its tap, both ways. */
export function redirectCommands(iface: PodInterface): BatchCommand[] {
  return [
    // A bare ingress qdisc a crash left between its add and its filter's (the sweep finds only
    // filters): the mirrored interface is the pod's, so its ingress qdisc is ours.
    { args: ['qdisc', 'del', 'dev', iface.name, 'ingress'], mayFail: true },
    { args: ['qdisc', 'add', 'dev', iface.name, 'ingress'] },
    { args: ['qdisc', 'add', 'dev', iface.tap, 'ingress'] },
    { args: redirectFilter(iface.name, iface.tap).slice(1) },
    { args: redirectFilter(iface.tap, iface.name).slice(1) },
  ];
}

interface TcFilter { options?: { actions?: Array<{ kind?: string; to_dev?: string }> } }

/** The links of the namespace whose ingress filters redirect to a `tapN_vc` (tc -j filter show). */
async function linksRedirectingToTaps(netns: string, links: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const link of links) {
    const result = await run(['tc', '-j', 'filter', 'show', 'dev', link, 'ingress'], { netns });
    if (result.code !== 0) continue; // no ingress qdisc, or the link went away
    const filters = parseJsonArray<TcFilter>(result.stdout, `tc -j filter show dev ${link} ingress`);
    if (filters.some((f) => f.options?.actions?.some((a) => a.kind === 'mirred' && a.to_dev !== undefined && TAP_NAME.test(a.to_dev)))) found.push(link);
  }
  return found;
}

/** Every link name in the namespace. */
export async function linkNames(netns: string): Promise<string[]> {
  const text = await runChecked(['ip', '-j', 'link', 'show'], { netns });
  return parseJsonArray<IpLink>(text, 'ip -j link').map((l) => l.ifname).filter((n): n is string => typeof n === 'string');
}

/**
 * Undoes `createTaps` in `plan.netns`, whatever part of it ran: the ingress qdisc (and with it the
 * filter) of every link redirecting to a `tapN_vc`, then every `tapN_vc`. A namespace that is gone
 * has nothing left to undo. Idempotent.
 */
export async function removeTaps(plan: TapPlan): Promise<void> {
  const { netns } = plan;
  const listed = await run(['ip', '-j', 'link', 'show'], { netns });
  if (listed.code !== 0) {
    // nsenter cannot enter a namespace that is gone (file missing or no longer nsfs): nothing left.
    if (!(await isNetns(netns))) return;
    throw new VcError('NETWORK_FAILED', `${describe(['ip', '-j', 'link', 'show'], netns)} failed (${exitText(listed)}): ${listed.stderr.trim()}`);
  }
  await sweepTaps(netns, parseJsonArray<IpLink>(listed.stdout, 'ip -j link').map((l) => l.ifname).filter((n): n is string => typeof n === 'string'));
}

/** removeTaps with the namespace's link names already read. */
async function sweepTaps(netns: string, links: string[]): Promise<void> {
  const taps = links.filter((n) => TAP_NAME.test(n));
  // A filter names the tap it redirects to only while that tap exists (once it is gone, tc shows
  // `to_dev` "*"): with no tap there is no filter to find, and the scan's spawns are saved.
  if (taps.length === 0) return;
  for (const link of await linksRedirectingToTaps(netns, links.filter((n) => !TAP_NAME.test(n)))) {
    const result = await run(['tc', 'qdisc', 'del', 'dev', link, 'ingress'], { netns });
    if (result.code !== 0 && !/Invalid handle|Cannot find device/.test(result.stderr)) {
      throw new VcError('NETWORK_FAILED', `${describe(['tc', 'qdisc', 'del', 'dev', link, 'ingress'], netns)} failed (${exitText(result)}): ${result.stderr.trim()}`);
    }
  }
  for (const tap of taps) {
    const result = await run(['ip', 'link', 'del', 'dev', tap], { netns });
    if (result.code !== 0 && !/Cannot find device/.test(result.stderr)) {
      throw new VcError('NETWORK_FAILED', `${describe(['ip', 'link', 'del', 'dev', tap], netns)} failed (${exitText(result)}): ${result.stderr.trim()}`);
    }
  }
}
