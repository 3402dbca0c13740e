// A pod's network: what the caller asks for (PodConfig.network, PodConfig.dns) and what the pod's
// record keeps of it (the plan written before anything is made, the interfaces made). Plain JSON
// shapes only; src/network/ makes and removes the things they name.
import { z } from 'zod';

const ABSOLUTE_PATH = /^\/\S*$/;

const conflistSchema = z.looseObject({
  cniVersion: z.string().min(1),
  name: z.string().min(1),
  plugins: z.array(z.looseObject({ type: z.string().min(1) })).min(1),
});

const networkObjectSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('none') }),
  z.strictObject({ mode: z.literal('netns'), path: z.string().regex(ABSOLUTE_PATH, 'must be an absolute path') }),
  z.strictObject({ mode: z.literal('bridge'), conflist: conflistSchema.optional() }),
]);

/**
 * `none` (loopback only), `bridge` (a namespace of the pod's own, filled by the CNI plugins), or a
 * namespace the caller made (`netns:PATH` or `{ mode: 'netns', path }`). The CLI's spellings are
 * accepted as strings.
 */
export const networkSchema = z.union([
  z.literal('none').transform(() => ({ mode: 'none' as const })),
  z.literal('bridge').transform(() => ({ mode: 'bridge' as const })),
  z.string().regex(/^netns:\/\S*$/, 'must be none, bridge, netns:/ABSOLUTE/PATH or an object with mode')
    .transform((text) => ({ mode: 'netns' as const, path: text.slice('netns:'.length) })),
  networkObjectSchema,
]).transform((mode) => mode as PodNetworkMode);

const dnsWord = z.string().regex(/^[!-~]+$/).refine((w) => !/[#;]/.test(w), 'must not contain # or ;');

/** The pod's resolv.conf; without it, the host's (loopback name servers left out). */
export const dnsSchema = z.strictObject({
  nameservers: z.array(z.union([z.ipv4(), z.ipv6()])).max(3).default([]),
  search: z.array(dnsWord).max(6).default([]),
  options: z.array(dnsWord).default([]),
});

export type PodNetworkMode =
  | { mode: 'none' }
  | { mode: 'netns'; path: string }
  | { mode: 'bridge'; conflist?: CniConflist };
export type PodDnsConfig = z.output<typeof dnsSchema>;

export interface NetnsPlan {
  /** The nsfs file that names the namespace. */
  path: string;
  /** true: made and removed by us (bridge mode); false: the caller's (netns mode), left alone. */
  owned: boolean;
}

export interface TapPlan {
  /** The namespace (nsfs path) the taps are made in: the pod's. */
  netns: string;
}

export interface PodRoute {
  /** Destination as CIDR: `0.0.0.0/0` / `::/0` for the default route. */
  dst: string;
  gateway?: string;
  /** The interface (its name in the pod's namespace: the guest NIC's name). */
  dev: string;
  family: 4 | 6;
  scope?: string;
  /** `kernel` for the routes the kernel adds with an address (the guest's kernel adds them too). */
  protocol?: string;
  source?: string;
}

/** One interface as the guest agent is told it, and the tap the VMM opens for it. */
export interface PodInterface {
  /** The interface's name in the namespace (the veth: `eth0`); the guest names its NIC so. */
  name: string;
  /** The tap in the same namespace that carries its frames to the VM. */
  tap: string;
  /** The veth's MAC: the VM NIC takes it. */
  mac: string;
  mtu: number;
  /** CIDR strings, global scope only (v4 and v6; link-local v6 the guest makes itself). */
  addresses: string[];
  routes: PodRoute[];
}

export interface CniConflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string }>;
}

/** The attachment of one pod to one network: the record to write before `cniAdd`, and all `cniDel` needs. */
export interface CniAttachment {
  /** CNI_CONTAINERID: the pod id (host-local keys its leases by it and the ifname). */
  containerId: string;
  /** CNI_NETNS: the pod's namespace file. */
  netns: string;
  /** CNI_IFNAME inside the namespace. */
  ifName: string;
  /** The network as it was at ADD (a DEL must see the same config, e.g. the same IPAM dataDir). */
  conflist: CniConflist;
}

export interface CniInterface { name: string; mac?: string; mtu?: number; sandbox?: string }
export interface CniIp { address: string; gateway?: string; interface?: number }
export interface CniRoute { dst: string; gw?: string; mtu?: number; advmss?: number; priority?: number; table?: number; scope?: number }
export interface CniDns { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] }
export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIp[];
  routes: CniRoute[];
  dns: CniDns;
}

/** The record of everything a pod's network set-up makes; JSON, written before any of it is made. */
export interface PodNetworkPlan {
  version: 1;
  mode: 'none' | 'netns' | 'bridge';
  netns?: NetnsPlan;
  cni?: CniAttachment;
  taps?: TapPlan;
  /** CNI plugins run in this namespace instead of the caller's (tests; a runtime's own host netns). */
  hostNetns?: string;
}

export interface PodNetworkResult {
  interfaces: PodInterface[];
  /** bridge mode: the CNI ADD result, for CHECK and for DEL's prevResult. */
  cniResult?: CniResult;
}


/** What a pod's record keeps of its network while it runs (and after a failed start, for the undo). */
export interface PodNetworkRecord {
  /** Written before the set-up makes anything: all a teardown needs. */
  plan: PodNetworkPlan;
  /** What the set-up made (the guest's NICs), once it has. */
  interfaces?: PodInterface[];
  cniResult?: CniResult;
}
