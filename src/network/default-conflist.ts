// The CNI network a `bridge` pod joins when the caller gives none: bridge `vc0` (the host end of
// each pod's veth, the gateway at .1) with host-local IPAM. No `loopback` plugin: createNetns
// brings the pod namespace's `lo` up with the namespace itself, and each plugin is one more
// program spawned on every start and delete (pods recorded with it still run it at DEL: the
// recorded conflist is what is undone).
//
// Subnet 10.231.0.0/16: clear of podman's default (10.88.0.0/16), Docker's (172.17.0.0/16 and the
// 172.18+/192.168 pools it takes next), Kubernetes' usual pod/service ranges (flannel 10.244/16,
// kube services 10.96/12, k3s 10.42/16 and 10.43/16, calico 192.168/16), and containerd's CNI
// examples (10.22/16); a /16 holds 65534 pods. Callers with other plans pass their own subnet.
//
// The IPAM data dir (the lease files) lives under the state root, so a private root (tests) has
// private leases. Two roots on one host namespace must not share a bridge and subnet: their IPAMs
// would hand out the same addresses.
import { join } from 'node:path';
import type { CniConflist } from './cni.js';

export const DEFAULT_NETWORK_NAME = 'virtcontainers';
export const DEFAULT_BRIDGE = 'vc0';
export const DEFAULT_SUBNET = '10.231.0.0/16';

export interface DefaultConflistOptions {
  /** host-local's lease directory: `ipamDataDir(root)`. */
  dataDir: string;
  subnet?: string;
  bridge?: string;
  name?: string;
  /** The bridge's (and so the veths') MTU; unset: the kernel's 1500. */
  mtu?: number;
}

/** Where host-local keeps the leases of a state root: `<root>/network/ipam` (`<that>/<network name>/<ip>`). */
export function ipamDataDir(root: string): string {
  return join(root, 'network', 'ipam');
}

export function defaultConflist(options: DefaultConflistOptions): CniConflist {
  const bridge: Record<string, unknown> & { type: string } = {
    type: 'bridge',
    bridge: options.bridge ?? DEFAULT_BRIDGE,
    isGateway: true,
    ipMasq: false,
    hairpinMode: false,
    ipam: {
      type: 'host-local',
      ranges: [[{ subnet: options.subnet ?? DEFAULT_SUBNET }]],
      routes: [{ dst: '0.0.0.0/0' }],
      dataDir: options.dataDir,
    },
  };
  if (options.mtu !== undefined) bridge.mtu = options.mtu;
  return {
    cniVersion: '1.0.0',
    name: options.name ?? DEFAULT_NETWORK_NAME,
    plugins: [bridge],
  };
}
