// A pod's network in its lifecycle (docs/networking.md): planned and recorded with the `starting`
// step, made before the VMM starts (the VMM runs inside the namespace), told to the guest agent
// once it answers, torn down after the VMM is reaped — by the stop, the delete, the undo of a
// start, or whoever settles a step whose caller died.
import { readFile } from 'node:fs/promises';
import type { AgentClient, NetworkConfig } from '../agent/index.js';
import type { StepHook } from '../crash-points.js';
import { VcError } from '../errors.js';
import type { VmNetwork } from '../hypervisor/types.js';
import { hostnameFromId } from '../model/hostname.js';
import type { PodDnsConfig, PodNetworkMode, PodNetworkRecord } from '../model/network.js';
import type { PodRecord } from '../model/records.js';
import { checkPodNetworkHost, planPodNetwork, removeNetns, setUpPodNetwork, tearDownPodNetwork, planPodNetns } from '../network/index.js';
import type { PodStore } from '../store/pod-store.js';

/** The mode a record asks for: records written before pods had networks have none. */
export function networkModeOf(record: PodRecord): PodNetworkMode {
  return record.config.network ?? { mode: 'none' };
}

/**
 * Sets `record.network` to what a start will make, once the host is known to have every program
 * and plugin it needs; the caller writes it before making any of it.
 */
export async function planNetwork(store: PodStore, record: PodRecord): Promise<PodNetworkRecord> {
  const plan = planPodNetwork({ root: store.root, podId: record.id, podDir: store.paths(record.id).dir, network: networkModeOf(record) });
  await checkPodNetworkHost(plan);
  record.network = { plan };
  return record.network;
}

/** Makes the recorded plan and records what it made; returns the VM's NICs (none: no namespace to enter). */
export async function setUpNetwork(store: PodStore, record: PodRecord, signal?: AbortSignal, step?: StepHook): Promise<VmNetwork | undefined> {
  const network = record.network;
  if (!network) throw new Error(`pod ${record.id}: the network is set up only after it is planned and recorded`);
  const made = await setUpPodNetwork(network.plan, { signal, ...(step ? { step } : {}) });
  network.interfaces = made.interfaces;
  if (made.cniResult) network.cniResult = made.cniResult;
  await store.write(record);
  return vmNetwork(record);
}

export function vmNetwork(record: PodRecord): VmNetwork | undefined {
  const { plan, interfaces = [] } = record.network ?? {};
  if (!plan?.netns) return undefined;
  return { netns: plan.netns.path, nics: interfaces.map((i) => ({ tap: i.tap, mac: i.mac, mtu: i.mtu })) };
}

/** Undoes whatever part of the recorded network was made; idempotent. The caller writes the record. */
export async function tearDownNetwork(record: PodRecord): Promise<void> {
  const network = record.network;
  if (!network) return;
  await tearDownPodNetwork(network.plan, network.cniResult ? { prevResult: network.cniResult } : {});
  delete record.network;
}

/**
 * For a pod whose record cannot be read (forced delete): what a bridge pod of this id would have
 * made — its namespace in the pod directory and its default CNI attachment. DEL of what was never
 * added is a no-op, so this is safe for pods of any mode. A `netns` pod's taps stay in the
 * caller's namespace (its path was in the unreadable record); they go with that namespace.
 */
export async function tearDownUnrecordedNetwork(store: PodStore, id: string): Promise<void> {
  const plan = planPodNetwork({ root: store.root, podId: id, podDir: store.paths(id).dir, network: { mode: 'bridge' } });
  await tearDownPodNetwork(plan);
}

/** A mounted namespace file cannot be unlinked: unmount it before the pod directory goes. */
export async function releasePodNetns(store: PodStore, id: string): Promise<void> {
  await removeNetns(planPodNetns(store.paths(id).dir));
}

/** What the guest agent is told: the NICs by MAC, their routes, resolv.conf, hosts, host name. */
export async function guestNetworkConfig(record: PodRecord, hostResolvConf = '/etc/resolv.conf'): Promise<NetworkConfig> {
  const interfaces = record.network?.interfaces ?? [];
  const hostname = record.config.hostname ?? hostnameFromId(record.id);
  const firstAddress = interfaces.flatMap((i) => i.addresses).find((a) => !a.includes(':')) ?? interfaces.flatMap((i) => i.addresses)[0];
  return {
    interfaces: interfaces.map((i) => ({ mac: i.mac, name: i.name, mtu: i.mtu, addresses: i.addresses, up: true })),
    // The guest's kernel makes the routes of its own addresses (protocol kernel) as the namespace's did.
    routes: interfaces.flatMap((i) => i.routes.filter((r) => r.protocol !== 'kernel').map((r) => ({
      dest: r.dst === '0.0.0.0/0' ? 'default' : r.dst,
      ...(r.gateway ? { gateway: r.gateway } : {}),
      interface: r.dev,
    }))),
    dns: record.config.dns ?? resolvConfOf(await readFile(hostResolvConf, 'utf8').catch(() => '')),
    hosts: firstAddress ? [{ ip: firstAddress.split('/')[0]!, names: [hostname] }] : [],
    hostname,
  };
}

/**
 * The host's resolv.conf as the pod's: loopback name servers (a local resolver such as
 * systemd-resolved's 127.0.0.53) cannot be reached from the VM and are left out.
 */
export function resolvConfOf(text: string): PodDnsConfig {
  const dns: PodDnsConfig = { nameservers: [], search: [], options: [] };
  for (const line of text.split('\n')) {
    const [key, ...words] = line.trim().split(/\s+/);
    if (key === 'nameserver' && words[0] && !/^(127\.|::1$)/.test(words[0])) dns.nameservers.push(words[0]);
    else if (key === 'search' || key === 'domain') dns.search = words.filter((w) => !/[#;]/.test(w));
    else if (key === 'options') dns.options.push(...words.filter((w) => !/[#;]/.test(w)));
  }
  dns.nameservers = dns.nameservers.slice(0, 3);
  dns.search = dns.search.slice(0, 6);
  return dns;
}

/** The NICs appear as virtio_net probes them; an agent asked too early does not find the MAC yet. */
export async function configureGuestNetwork(agent: AgentClient, record: PodRecord, options: { signal?: AbortSignal; waitMs?: number } = {}): Promise<void> {
  const config = await guestNetworkConfig(record);
  const deadline = Date.now() + (options.waitMs ?? 10_000);
  for (;;) {
    try {
      await agent.configureNetwork(config);
      return;
    } catch (err) {
      const notYet = (err as { code?: string }).code === 'NOT_FOUND' && Date.now() < deadline && !options.signal?.aborted;
      if (!notYet) throw new VcError('NETWORK_FAILED', `pod ${record.id}: the guest agent could not configure the network: ${(err as Error).message}`, { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** `network` of PodStatus: the mode and the VM's interfaces as the guest was told them. */
export interface PodNetworkStatus {
  mode: PodNetworkMode['mode'];
  /** The namespace the pod's network lives in (bridge: the pod's own; netns: the caller's). */
  netns: string | null;
  interfaces: { name: string; mac: string; mtu: number; addresses: string[] }[];
}

export function networkStatus(record: PodRecord): PodNetworkStatus {
  return {
    mode: networkModeOf(record).mode,
    netns: record.network?.plan.netns?.path ?? null,
    interfaces: (record.network?.interfaces ?? []).map((i) => ({ name: i.name, mac: i.mac, mtu: i.mtu, addresses: [...i.addresses] })),
  };
}
