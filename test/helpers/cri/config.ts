// What the CRI test rig writes for containerd's CRI plugin (containerd 1.6, config version 2) and
// for CNI: the plugin's TOML section and the CNI network list. Pure text; test/helpers/containerd.ts
// puts the TOML into its config, test/helpers/cri/rig.ts writes the conflist.
import { join } from 'node:path';

export interface CriRuntime {
  /** containerd's runtime type, naming the shim binary: io.containerd.NAME.v2 → containerd-shim-NAME-v2. */
  runtimeType: string;
  /** Sandbox annotations (glob patterns) CRI passes on to the runtime in the OCI spec; the rest it drops. */
  podAnnotations?: string[];
}

export interface CriOptions {
  /** The image every pod's sandbox ("pause") container runs; must be imported in namespace k8s.io. */
  sandboxImage: string;
  /** The directory holding the CNI network list (CRI loads the first, by name). */
  cniConfDir: string;
  /** Where the CNI plugins are (Debian: /usr/lib/cni). */
  cniBinDir?: string;
  /** The streaming server's port on 127.0.0.1 (Exec, Attach, PortForward URLs point there). */
  streamServerPort: number;
  /** Runtime handlers by name; `runc` is the default handler (""). */
  runtimes?: Record<string, CriRuntime>;
}

/** The CRI's containerd namespace: its images and containers live there, not in the rig's vc-test. */
export const CRI_NAMESPACE = 'k8s.io';
export const CRI_PLUGIN = 'io.containerd.grpc.v1.cri';
export const VIRTC_RUNTIME: CriRuntime = { runtimeType: 'io.containerd.virtc.v2', podAnnotations: ['io.virtcontainers.*'] };
export const DEFAULT_CNI_BIN_DIR = '/usr/lib/cni';
/** libcni's cache of results (results/NETWORK-ID-IFACE), a fixed path go-cni does not let CRI change. */
export const CNI_STATE_DIR = '/var/lib/cni';
/** Where containerd puts pod network namespaces unless netns_mounts_under_state_dir is set. */
export const HOST_NETNS_DIR = '/var/run/netns';

const q = (s: string) => JSON.stringify(s);

/** The `[plugins."io.containerd.grpc.v1.cri"]` section. */
export function criToml(o: CriOptions): string {
  const runtimes: Record<string, CriRuntime> = { runc: { runtimeType: 'io.containerd.runc.v2' }, ...o.runtimes };
  const plugin = `plugins.${q(CRI_PLUGIN)}`;
  const lines = [
    `[${plugin}]`,
    `  sandbox_image = ${q(o.sandboxImage)}`,
    // The streaming server binds here: the test's network namespace has lo only (brought up).
    '  stream_server_address = "127.0.0.1"',
    `  stream_server_port = ${q(String(o.streamServerPort))}`,
    '  enable_selinux = false',
    // Root lacks CAP_SYS_RESOURCE here: the pause container's oom_score_adj -998 would fail.
    '  restrict_oom_score_adj = true',
    // Pod network namespaces are bind mounts under CRI's state directory (in the rig's directory,
    // mounted in the rig's mount namespace) instead of /var/run/netns on the host.
    '  netns_mounts_under_state_dir = true',
    '  disable_apparmor = true',
    `[${plugin}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
  ];
  for (const [name, r] of Object.entries(runtimes)) {
    lines.push(`[${plugin}.containerd.runtimes.${q(name)}]`, `  runtime_type = ${q(r.runtimeType)}`);
    if (r.podAnnotations?.length) lines.push(`  pod_annotations = [${r.podAnnotations.map(q).join(', ')}]`);
    // cgroupfs, not systemd (there is no systemd here to ask).
    if (r.runtimeType === 'io.containerd.runc.v2') lines.push(`[${plugin}.containerd.runtimes.${q(name)}.options]`, '  SystemdCgroup = false');
  }
  lines.push(
    `[${plugin}.cni]`,
    `  bin_dir = ${q(o.cniBinDir ?? DEFAULT_CNI_BIN_DIR)}`,
    `  conf_dir = ${q(o.cniConfDir)}`,
    '  max_conf_num = 1',
  );
  return lines.join('\n') + '\n';
}

export interface ConflistOptions {
  /** The network's name (CNI keys its IP reservations and iptables chains by it). */
  name: string;
  /** The Linux bridge the pods' veths join (made by the bridge plugin in the current netns). */
  bridge: string;
  /** A private IPv4 /24 or so, e.g. 10.232.0.0/24; the bridge gets .1 as the pods' gateway. */
  subnet: string;
  /** host-local's reservation files (default /var/lib/cni/networks; the rig keeps them in its directory). */
  ipamDataDir: string;
}

/** bridge + host-local, loopback, portmap: the usual single-node pod network. */
export function cniConflist(o: ConflistOptions): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: o.name,
    plugins: [
      {
        type: 'bridge',
        bridge: o.bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: o.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: o.ipamDataDir },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  }, null, 2) + '\n';
}

/** Where the rig keeps CNI's files within its directory. */
export const cniPaths = (dir: string) => ({ confDir: join(dir, 'cni', 'net.d'), ipamDataDir: join(dir, 'cni', 'networks') });
