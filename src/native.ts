// The one place that loads the native addon and the native executables, and types their surface.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CgroupLimits, CgroupPaths } from './model/cgroup.js';

export interface KvmProbe {
  device: string;
  /** The vendor module behind /dev/kvm: kvm_intel / kvm_amd run stock guests; kvm_pvm does not. */
  flavor: 'kvm_intel' | 'kvm_amd' | 'kvm_pvm' | 'none';
  available: boolean;
  apiVersion: number | null;
  stockGuests: boolean;
  /** Why stock guests cannot run here; null when they can. */
  reason: string | null;
}

/** The built-in VMM in this process (native/addon/vm_handle.cc over native/vmm/kvm/vm.h). */
export interface NativeVm {
  start(): void;
  /** Returns once no vCPU runs guest code. */
  pause(): void;
  resume(): void;
  /** Asks the VM to stop; wait() resolves once it has. Idempotent. */
  stop(): void;
  /** The control socket's status object as JSON text (docs/vmm.md). */
  status(): string;
  /** Fills the first free block slot with the same read-only flag; returns its index. */
  attachBlock(path: string, readOnly: boolean, serial: string): number;
  /** Resolves when the VM has stopped and its threads are joined: why, in the VMM's words. */
  wait(): Promise<{ reason: string; detail: string }>;
}

/** Which cgroup hierarchy pods get (native/host/cgroup.h): v2 with cpu+memory+pids, else v1. */
export type NativeCgroupSupport =
  | { version: 2; root: string }
  | { version: 1; roots: { cpu: string; memory: string; pids: string }; whyNotV2: string }
  | { version: null; reason: string };

export interface NativeAddon {
  addonVersion: number;
  /** `new Vm(configJson)`: the same JSON config as `vc-vmm run --config` (docs/vmm.md). */
  Vm: new (configJson: string) => NativeVm;
  kvmProbe(device?: string): KvmProbe;
  /** Non-blocking flock: true when taken, false when someone else holds it. */
  flock(fd: number, exclusive: boolean): boolean;
  funlock(fd: number): void;
  cgroupSupport(): NativeCgroupSupport;
  /**
   * Creates `virtcontainers/<name>` with the limits; `paths` are the group's directories (one on
   * v2, one per distinct cpu/memory/pids hierarchy on v1). Throws (message naming the path and
   * errno text; `path`, `errno` properties) and leaves nothing behind on failure.
   */
  cgroupCreate(name: string, limits: CgroupLimits): CgroupPaths;
  /** Kills what is in the groups, then removes them; a group already gone is fine. */
  cgroupRemove(paths: string[], timeoutMs?: number): Promise<void>;
  /** Pids of the processes in the groups, ascending. */
  cgroupPids(paths: string[]): number[];
  /**
   * A listening, non-blocking TCP socket on 127.0.0.1 (kernel-picked port) inside the network
   * namespace whose nsfs file is `path` (made on a thread of its own: this thread's namespace never
   * changes). The caller owns the fd (`net.Server.listen({ fd })`). Throws naming the path, the
   * step and the errno text (`errno` property).
   */
  listenInNetns(path: string): { fd: number; port: number };
  /**
   * Where an accepted IPv4 connection was sent before NAT (REDIRECT) rewrote it
   * (SO_ORIGINAL_DST). Throws with the errno text (`errno` ENOENT: it was not NATed).
   */
  originalDestination(fd: number): { address: string; port: number };
  /**
   * A connected, non-blocking Unix stream socket's fd (wrap it: `new net.Socket({ fd })`). Never
   * blocks; throws with `code` EAGAIN (listener's backlog full: retry), ENOENT or ECONNREFUSED.
   */
  unixConnect(path: string): number;
  /** Sends `data` on a Unix socket with `fd` attached (SCM_RIGHTS); the caller still owns `fd`. */
  sendWithFd(socketFd: number, data: Buffer, fd: number): void;
  /**
   * A new network namespace with `lo` up, bind-mounted onto the existing file `path` (made on a
   * thread of its own). Throws naming the step and the errno text (`errno`); nothing is mounted then.
   */
  makeNetns(path: string): void;
  /** Unmounts every mount stacked on `path`; returns how many (0: not mounted, or no file). */
  unmountNetns(path: string): number;
  /**
   * In the namespace whose nsfs file is `netnsPath`, per mirror: tap `tap` (persistent, `mtu`, no
   * IPv6 address generation, up), ingress qdiscs on it and on `interface`, and u32 match-all
   * filters redirecting each one's frames out of the other (mirred). Throws at the first failure
   * naming the step (the kernel's own words in parentheses when it gave them) and the errno text;
   * what was made stays for removeTaps' sweep.
   */
  makeTapMirrors(netnsPath: string, mirrors: { interface: string; tap: string; mtu: number }[]): void;
  /**
   * The namespace whose nsfs file is `path` as the kernel lists it over rtnetlink (what `ip -d
   * addr` and `ip route` read; numbers, not names): its links, addresses and the main table's
   * routes (not cloned ones). Throws naming the step and the errno text.
   */
  readNetns(path: string): NetnsView;
  /**
   * Undoes makeTapMirrors in the namespace whatever part of it ran: the ingress qdisc of every link
   * with a filter redirecting to a `tapN_vc`, then every `tapN_vc`; returns how many taps went.
   * With no `tapN_vc` it only lists the links. Throws naming the step and the errno text.
   */
  sweepTapMirrors(netnsPath: string): number;
}

export interface NetnsView {
  /** `ether`: ARPHRD_ETHER; `mac` lower-case `aa:bb:…`, '' when the link has none. */
  links: { index: number; name: string; ether: boolean; mac: string; mtu: number }[];
  /** `index`: the link's; `scope`: RT_SCOPE_* (0 universe, 253 link, 254 host). */
  addresses: { index: number; family: 4 | 6; address: string; prefix: number; scope: number }[];
  /** `dst` '' and `dstLen` 0: the default route; `oif` 0: through no single link; RT_SCOPE_*, RTPROT_*, RTN_*; '' for an absent address. */
  routes: { family: 4 | 6; dst: string; dstLen: number; gateway: string; oif: number; scope: number; protocol: number; type: number; source: string }[];
}

/** The package root: dist/src/native.js lives two levels below it. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export class NativeLoadError extends Error {
  readonly code = 'NATIVE_LOAD';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NativeLoadError';
  }
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  try {
    // node-gyp-build looks in build/Release, build/Debug and prebuilds/<platform>-<arch>/.
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    addon = load(packageRoot);
    return addon;
  } catch (err) {
    const prebuildDir = join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`);
    const tried = [
      join(packageRoot, 'build', 'Release', 'vc_addon.node'),
      join(packageRoot, 'build', 'Debug', 'vc_addon.node'),
      `${prebuildDir}/*.node (napi prebuilds)`,
    ];
    throw new NativeLoadError(
      `cannot load the virtcontainers addon (${(err as Error).message.split('\n')[0]}); tried:\n  ${tried.join('\n  ')}\n` +
        'Run `npm run build:native` (needs g++, make and python3) or install a package with prebuilds.',
      { cause: err },
    );
  }
}

/** Path of a native executable built by binding.gyp (build/) or shipped in prebuilds/. */
export function nativeExecutable(name: 'vc-agent' | 'vc-vmm' | 'vc-holder'): string {
  const tried = [
    join(packageRoot, 'build', 'Release', name),
    join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, name),
  ];
  const found = tried.find((p) => existsSync(p));
  if (found) return found;
  throw new NativeLoadError(`cannot find the ${name} executable; tried:\n  ${tried.join('\n  ')}\nRun \`npm run build:native\`.`);
}
