// Runs CNI plugins ourselves (CNI spec 1.0, "Section 2: Execution Protocol" and "Section 4:
// Plugin Delegation"): each plugin of a conflist is executed with CNI_COMMAND, CNI_CONTAINERID,
// CNI_NETNS, CNI_IFNAME, CNI_PATH in its environment and its configuration on stdin (the plugin's
// object plus the list's `name` and `cniVersion`, and `prevResult` where the spec asks for it).
// ADD runs the plugins in order, each getting the previous one's result; DEL runs them in reverse,
// every one of them even when one fails (so a lease is released even when an earlier DEL broke),
// and works after a half-done ADD or with the namespace already gone (CNI_NETNS is then empty, as
// the bridge plugin accepts); CHECK runs them in order with the ADD's result.
//
// `hostNetns` runs the plugins inside another network namespace: the bridge plugin makes its
// bridge and the host ends of the veths in the namespace it runs in (tests use their own).
import type { CniAttachment, CniConflist, CniDns, CniInterface, CniIp, CniResult, CniRoute } from '../model/network.js';
export type { CniAttachment, CniConflist, CniDns, CniInterface, CniIp, CniResult, CniRoute } from '../model/network.js';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { VcError } from '../errors.js';
import { NETWORK_NONE_HINT, run, exitText, type RunResult } from './exec.js';
import { isNetns } from './netns.js';

/** Debian and Ubuntu's containernetworking-plugins, Fedora's (and RHEL's), the upstream tarball's. */
export const DEFAULT_CNI_PLUGIN_DIRS = ['/usr/lib/cni', '/usr/libexec/cni', '/opt/cni/bin'];
/** The plugins containernetworking-plugins ships (1.1 in Debian bookworm; dummy and tap since): a missing one names the package. */
const STANDARD_PLUGINS = new Set(['bandwidth', 'bridge', 'dhcp', 'dummy', 'firewall', 'host-device', 'host-local', 'ipvlan',
  'loopback', 'macvlan', 'portmap', 'ptp', 'sbr', 'static', 'tap', 'tuning', 'vlan', 'vrf']);
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IFNAME = /^[^/:\s]{1,15}$/;

export interface CniRuntime {
  /** Where the plugins are (CNI_PATH); default DEFAULT_CNI_PLUGIN_DIRS. */
  pluginDirs?: string[];
  /** Run the plugins inside this network namespace (a path) instead of the caller's. */
  hostNetns?: string;
  /** Per plugin run (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export function planAttachment(podId: string, netns: string, conflist: CniConflist, ifName = 'eth0'): CniAttachment {
  if (!CONTAINER_ID.test(podId)) throw new VcError('INVALID_CONFIG', `CNI container id ${JSON.stringify(podId)}: letters, digits, _ . - starting with a letter or digit`);
  if (!IFNAME.test(ifName)) throw new VcError('INVALID_CONFIG', `CNI interface name ${JSON.stringify(ifName)}: 1-15 characters, no / : or space`);
  return { containerId: podId, netns, ifName, conflist: validateConflist(conflist) };
}

/** Checks the shape of a conflist (object with cniVersion, name, plugins[] each with a type); INVALID_CONFIG naming the field. */
export function validateConflist(value: unknown): CniConflist {
  const bad = (what: string): never => { throw new VcError('INVALID_CONFIG', `CNI conflist: ${what}`); };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('must be an object');
  const list = value as Record<string, unknown>;
  if (typeof list.cniVersion !== 'string' || !/^\d+\.\d+\.\d+$/.test(list.cniVersion)) bad(`cniVersion must be a version string like "1.0.0", got ${JSON.stringify(list.cniVersion)}`);
  if (typeof list.name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(list.name)) bad(`name must be letters, digits, _ . -, got ${JSON.stringify(list.name)}`);
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) bad('plugins must be a non-empty array');
  (list.plugins as unknown[]).forEach((plugin, i) => {
    if (typeof plugin !== 'object' || plugin === null || Array.isArray(plugin)) bad(`plugins[${i}] must be an object`);
    const type = (plugin as Record<string, unknown>).type;
    if (typeof type !== 'string' || !/^[a-zA-Z0-9_.-]+$/.test(type)) bad(`plugins[${i}].type must be a plugin name, got ${JSON.stringify(type)}`);
  });
  return value as CniConflist;
}

/** The stdin of one plugin of the list (spec 1.0 "Deriving execution configuration"). */
export function pluginConfig(list: CniConflist, index: number, prevResult?: CniResult): Record<string, unknown> {
  const plugin = list.plugins[index]!;
  const config: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  if (prevResult !== undefined) config.prevResult = prevResult;
  return config;
}

/** Parses a plugin's success output (a CNI 1.0 result); CNI_PLUGIN_FAILED names the plugin and the bad field. */
export function parseCniResult(text: string, plugin: string): CniResult {
  const bad = (what: string): never => { throw new VcError('CNI_PLUGIN_FAILED', `CNI plugin ${plugin} returned an invalid result: ${what}`); };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return bad(`not JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not an object');
  const raw = value as Record<string, unknown>;
  if (typeof raw.cniVersion !== 'string') bad('cniVersion missing');
  const array = (field: string): unknown[] => {
    const v = raw[field];
    if (v === undefined) return [];
    if (!Array.isArray(v)) bad(`${field} is not an array`);
    return v as unknown[];
  };
  const obj = (v: unknown, where: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${where} is not an object`);
    return v as Record<string, unknown>;
  };
  const str = (o: Record<string, unknown>, key: string, where: string, required: boolean): string | undefined => {
    const v = o[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string') bad(`${where}.${key} is not a string`);
    return v as string;
  };
  const interfaces = array('interfaces').map((v, i) => {
    const o = obj(v, `interfaces[${i}]`);
    const iface: CniInterface = { name: str(o, 'name', `interfaces[${i}]`, true)! };
    const mac = str(o, 'mac', `interfaces[${i}]`, false);
    if (mac !== undefined) iface.mac = mac;
    const sandbox = str(o, 'sandbox', `interfaces[${i}]`, false);
    if (sandbox !== undefined) iface.sandbox = sandbox;
    if (typeof o.mtu === 'number') iface.mtu = o.mtu;
    return iface;
  });
  const ips = array('ips').map((v, i) => {
    const o = obj(v, `ips[${i}]`);
    const address = str(o, 'address', `ips[${i}]`, true)!;
    if (!isCidr(address)) bad(`ips[${i}].address ${JSON.stringify(address)} is not an address/prefix`);
    const ip: CniIp = { address };
    const gateway = str(o, 'gateway', `ips[${i}]`, false);
    if (gateway !== undefined) ip.gateway = gateway;
    if (o.interface !== undefined) {
      if (!Number.isInteger(o.interface) || (o.interface as number) < 0 || (o.interface as number) >= interfaces.length) bad(`ips[${i}].interface ${JSON.stringify(o.interface)} is not an index into interfaces`);
      ip.interface = o.interface as number;
    }
    return ip;
  });
  const routes = array('routes').map((v, i) => {
    const o = obj(v, `routes[${i}]`);
    const dst = str(o, 'dst', `routes[${i}]`, true)!;
    if (!isCidr(dst)) bad(`routes[${i}].dst ${JSON.stringify(dst)} is not an address/prefix`);
    const route: CniRoute = { dst };
    const gw = str(o, 'gw', `routes[${i}]`, false);
    if (gw !== undefined) route.gw = gw;
    for (const key of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (typeof o[key] === 'number') route[key] = o[key] as number;
    return route;
  });
  const dns: CniDns = {};
  if (raw.dns !== undefined) {
    const o = obj(raw.dns, 'dns');
    for (const key of ['nameservers', 'search', 'options'] as const) {
      if (o[key] === undefined) continue;
      if (!Array.isArray(o[key]) || !(o[key] as unknown[]).every((s) => typeof s === 'string')) bad(`dns.${key} is not an array of strings`);
      dns[key] = o[key] as string[];
    }
    const domain = str(o, 'domain', 'dns', false);
    if (domain !== undefined) dns.domain = domain;
  }
  return { cniVersion: raw.cniVersion as string, interfaces, ips, routes, dns };
}

/** A plugin's failure as CNI_PLUGIN_FAILED: its error JSON (`code`, `msg`, `details`) when it printed one, else its stderr. */
export function cniPluginError(plugin: string, command: string, result: RunResult): VcError {
  let text = '';
  try {
    const err = JSON.parse(result.stdout) as Record<string, unknown>;
    if (typeof err.msg === 'string') text = `${err.msg}${typeof err.details === 'string' && err.details ? ` (${err.details})` : ''}${err.code !== undefined ? ` [code ${String(err.code)}]` : ''}`;
  } catch {
    // not JSON: fall back to the raw output
  }
  if (!text) text = result.stderr.trim() || result.stdout.trim() || '(no output)';
  return new VcError('CNI_PLUGIN_FAILED', `CNI plugin ${plugin} ${command} failed (${exitText(result)}): ${text}`);
}

export function isCidr(text: string): boolean {
  const match = /^([0-9a-fA-F.:]+)\/(\d{1,3})$/.exec(text);
  if (!match) return false;
  const prefix = Number(match[2]);
  if (match[1]!.includes(':')) return prefix <= 128;
  const parts = match[1]!.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255) && prefix <= 32;
}

export async function findPlugin(type: string, dirs: string[]): Promise<string> {
  for (const dir of dirs) {
    const path = join(dir, type);
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // next directory
    }
  }
  const install = STANDARD_PLUGINS.has(type) ? 'install containernetworking-plugins (Debian, Ubuntu, Fedora)' : 'install it';
  throw new VcError('NETWORK_UNAVAILABLE', `CNI plugin ${type} not found in ${dirs.join(', ')}; ${install}, ${NETWORK_NONE_HINT}`);
}

async function execPlugin(command: 'ADD' | 'DEL' | 'CHECK', attachment: CniAttachment, index: number, netns: string, runtime: CniRuntime, prevResult?: CniResult): Promise<RunResult & { plugin: string }> {
  const dirs = runtime.pluginDirs ?? DEFAULT_CNI_PLUGIN_DIRS;
  const plugin = attachment.conflist.plugins[index]!.type;
  const path = await findPlugin(plugin, dirs);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: attachment.containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: attachment.ifName,
    CNI_PATH: dirs.join(':'),
  };
  const result = await run([path], {
    netns: runtime.hostNetns,
    env,
    stdin: JSON.stringify(pluginConfig(attachment.conflist, index, prevResult)),
    timeoutMs: runtime.timeoutMs ?? 60_000,
    signal: runtime.signal,
  });
  return { ...result, plugin };
}

/** ADD: every plugin in order; returns the last one's result (the caller keeps it for CHECK and DEL). */
export async function cniAdd(attachment: CniAttachment, runtime: CniRuntime = {}): Promise<CniResult> {
  if (!(await isNetns(attachment.netns))) throw new VcError('NETWORK_FAILED', `CNI ADD: ${attachment.netns} is not a network namespace`);
  let prev: CniResult | undefined;
  for (let i = 0; i < attachment.conflist.plugins.length; i++) {
    const result = await execPlugin('ADD', attachment, i, attachment.netns, runtime, prev);
    if (result.code !== 0) throw cniPluginError(result.plugin, 'ADD', result);
    prev = parseCniResult(result.stdout, result.plugin);
  }
  return prev!;
}

/** CHECK: every plugin in order with the ADD's result; resolves when all agree. */
export async function cniCheck(attachment: CniAttachment, prevResult: CniResult, runtime: CniRuntime = {}): Promise<void> {
  for (let i = 0; i < attachment.conflist.plugins.length; i++) {
    const result = await execPlugin('CHECK', attachment, i, attachment.netns, runtime, prevResult);
    if (result.code !== 0) throw cniPluginError(result.plugin, 'CHECK', result);
  }
}

/**
 * DEL: every plugin in reverse order, each even when another failed (the first failure is thrown
 * after all ran). Idempotent, and fine after a half-done ADD or with the namespace gone.
 */
export async function cniDel(attachment: CniAttachment, runtime: CniRuntime & { prevResult?: CniResult } = {}): Promise<void> {
  // A namespace file that is no longer a namespace (unmounted, or an empty file a crash left)
  // would fail the plugins ("unknown FS magic"); the spec lets DEL run without one.
  const netns = (await isNetns(attachment.netns)) ? attachment.netns : '';
  let first: VcError | undefined;
  for (let i = attachment.conflist.plugins.length - 1; i >= 0; i--) {
    try {
      const result = await execPlugin('DEL', attachment, i, netns, runtime, runtime.prevResult);
      if (result.code !== 0) first ??= cniPluginError(result.plugin, 'DEL', result);
    } catch (err) {
      if (runtime.signal?.aborted) throw err;
      first ??= err instanceof VcError ? err : new VcError('NETWORK_FAILED', String(err), { cause: err });
    }
  }
  if (first) throw first;
}
