/**
 * Arguments and result of `configure_network` (docs/agent-protocol.md, "Network"): checked here
 * with the agent's own rules, so that a bad value is reported naming the field and the value
 * before anything is sent (the agent checks again).
 */
import { isIP } from 'node:net';
import { AgentError, describeValue } from './errors.js';
import { isJsonObject } from './decoder.js';
import type { JsonObject } from './protocol.js';
import { resultError } from './requests.js';

export interface NetworkInterfaceConfig {
  /** The NIC's MAC address, aa:bb:cc:dd:ee:ff (any case). */
  mac: string;
  /** Rename the interface (1-15 of [a-zA-Z0-9_.-]). */
  name?: string;
  mtu?: number;
  /** CIDR strings, IPv4 or IPv6: "10.1.2.3/24", "fd00::3/64". */
  addresses?: string[];
  /** Default true. */
  up?: boolean;
}

export interface NetworkRouteConfig {
  /** "default" (IPv4, or IPv6 with an IPv6 gateway) or a CIDR with no host bits set. */
  dest: string;
  gateway?: string;
  /** An interface name or MAC; required without a gateway. */
  interface?: string;
  metric?: number;
}

export interface NetworkConfig {
  interfaces?: NetworkInterfaceConfig[];
  routes?: NetworkRouteConfig[];
  /** Replaces the pod's /etc/resolv.conf when given. */
  dns?: { nameservers?: string[]; search?: string[]; options?: string[] };
  /** Replaces the pod's /etc/hosts (after the localhost lines) when given. */
  hosts?: { ip: string; names: string[] }[];
  /** Replaces the pod's /etc/hostname (and the guest's host name) when given. */
  hostname?: string;
}

export interface ConfiguredInterface {
  mac: string;
  name: string;
  mtu: number;
  index: number;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;
const HOSTNAME = /^[a-zA-Z0-9][a-zA-Z0-9.-]{0,63}$/;
const WORD = /^[!-~]+$/; // printable ASCII, no space

function invalid(message: string): AgentError {
  return new AgentError('AGENT_INVALID_ARGUMENT', `configure_network: ${message}`, { op: 'configure_network' });
}

/** [bytes, prefix] of a CIDR string, or undefined. */
function parseCidr(value: string): { family: 4 | 6; prefix: number; address: string } | undefined {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(value);
  if (!m) return undefined;
  const family = isIP(m[1]!);
  const prefix = Number(m[2]);
  if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
  return { family: family as 4 | 6, prefix, address: m[1]! };
}

function hostBitsClear(c: { family: 4 | 6; prefix: number; address: string }): boolean {
  let bits: bigint;
  if (c.family === 4) {
    bits = c.address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  } else {
    const [head, tail] = c.address.includes('::') ? c.address.split('::') : [c.address, undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    if (groups.length !== 8 || groups.some((g) => g.includes('.'))) return true; // the agent decides
    bits = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
  }
  const width = BigInt(c.family === 4 ? 32 : 128);
  const hostMask = (1n << (width - BigInt(c.prefix))) - 1n;
  return (bits & hostMask) === 0n;
}

/** Checks a NetworkConfig the way the agent does; the error names the field and the value. */
export function networkArguments(config: NetworkConfig): JsonObject {
  if (!isJsonObject(config)) throw invalid(`the configuration must be an object, got ${describeValue(config)}`);
  const str = (field: string, value: unknown, re?: RegExp, what?: string): string => {
    if (typeof value !== 'string') throw invalid(`${field} must be a string, got ${describeValue(value)}`);
    if (re && !re.test(value)) throw invalid(`${field} must be ${what}, got ${describeValue(value)}`);
    return value;
  };
  const list = <T>(field: string, value: unknown, each: (item: unknown, at: string) => T): T[] => {
    if (!Array.isArray(value)) throw invalid(`${field} must be an array, got ${describeValue(value)}`);
    return value.map((item, i) => each(item, `${field}[${i}]`));
  };
  const obj = (field: string, value: unknown): Record<string, unknown> => {
    if (!isJsonObject(value)) throw invalid(`${field} must be an object, got ${describeValue(value)}`);
    return value;
  };
  const int = (field: string, value: unknown, lo: number, hi: number): number => {
    if (!Number.isInteger(value) || (value as number) < lo || (value as number) > hi) throw invalid(`${field} must be an integer ${lo}..${hi}, got ${describeValue(value)}`);
    return value as number;
  };
  const ip = (field: string, value: unknown): string => {
    const s = str(field, value);
    if (isIP(s) === 0) throw invalid(`${field} must be an IP address, got ${describeValue(s)}`);
    return s;
  };
  const args: JsonObject = {};
  if (config.interfaces !== undefined) {
    const macs = new Set<string>();
    const names = new Set<string>();
    args.interfaces = list('interfaces', config.interfaces, (item, at) => {
      const itf = obj(at, item);
      const out: JsonObject = { mac: str(`${at}.mac`, itf.mac, MAC, 'a MAC address aa:bb:cc:dd:ee:ff') };
      const mac = (out.mac as string).toLowerCase();
      if (macs.has(mac)) throw invalid(`${at}.mac ${describeValue(out.mac)} is listed twice`);
      macs.add(mac);
      if (itf.name !== undefined) {
        out.name = str(`${at}.name`, itf.name, IFNAME, 'an interface name (1-15 of [a-zA-Z0-9_.-])');
        if (out.name === '.' || out.name === '..') throw invalid(`${at}.name must be an interface name, got ${describeValue(out.name)}`);
        if (names.has(out.name as string)) throw invalid(`${at}.name ${describeValue(out.name)} is listed twice`);
        names.add(out.name as string);
      }
      if (itf.mtu !== undefined) out.mtu = int(`${at}.mtu`, itf.mtu, 68, 65535);
      if (itf.up !== undefined) {
        if (typeof itf.up !== 'boolean') throw invalid(`${at}.up must be a boolean, got ${describeValue(itf.up)}`);
        out.up = itf.up;
      }
      if (itf.addresses !== undefined) {
        out.addresses = list(`${at}.addresses`, itf.addresses, (a, aat) => {
          const s = str(aat, a);
          if (!parseCidr(s)) throw invalid(`${aat} must be an address with a prefix length (10.1.2.3/24, fd00::3/64), got ${describeValue(s)}`);
          return s;
        });
      }
      return out;
    });
  }
  if (config.routes !== undefined) {
    args.routes = list('routes', config.routes, (item, at) => {
      const r = obj(at, item);
      const dest = str(`${at}.dest`, r.dest);
      const cidr = parseCidr(dest === 'default' ? '0.0.0.0/0' : dest);
      if (!cidr) throw invalid(`${at}.dest must be "default" or a CIDR such as 10.0.0.0/8, got ${describeValue(dest)}`);
      if (!hostBitsClear(cidr)) throw invalid(`${at}.dest ${describeValue(dest)} has host bits set past the prefix length`);
      const out: JsonObject = { dest };
      if (r.gateway !== undefined) {
        out.gateway = ip(`${at}.gateway`, r.gateway);
        const gwFamily = isIP(out.gateway as string);
        const isDefault = dest === 'default' || dest === '0.0.0.0/0';
        if (gwFamily !== cidr.family && !(isDefault && gwFamily === 6)) {
          throw invalid(`${at}.gateway ${describeValue(out.gateway)} is not of the family of dest ${describeValue(dest)}`);
        }
      }
      if (r.interface !== undefined) {
        const s = str(`${at}.interface`, r.interface);
        if (!MAC.test(s) && !IFNAME.test(s)) throw invalid(`${at}.interface must be an interface name or a MAC address, got ${describeValue(s)}`);
        out.interface = s;
      } else if (out.gateway === undefined) {
        throw invalid(`${at}.interface is required for a route without a gateway`);
      }
      if (r.metric !== undefined) out.metric = int(`${at}.metric`, r.metric, 0, 0xffff_ffff);
      return out;
    });
  }
  if (config.dns !== undefined) {
    const dns = obj('dns', config.dns);
    const out: JsonObject = {};
    if (dns.nameservers !== undefined) out.nameservers = list('dns.nameservers', dns.nameservers, (v, at) => ip(at, v));
    for (const key of ['search', 'options'] as const) {
      if (dns[key] === undefined) continue;
      out[key] = list(`dns.${key}`, dns[key], (v, at) => {
        const s = str(at, v, WORD, 'one word of printable characters');
        if (/[#;]/.test(s)) throw invalid(`${at} must not contain # or ;, got ${describeValue(s)}`);
        return s;
      });
    }
    args.dns = out;
  }
  if (config.hosts !== undefined) {
    args.hosts = list('hosts', config.hosts, (item, at) => {
      const h = obj(at, item);
      const names = list(`${at}.names`, h.names, (v, nat) => {
        const s = str(nat, v, WORD, 'one word of printable characters');
        if (/[#;]/.test(s)) throw invalid(`${nat} must not contain # or ;, got ${describeValue(s)}`);
        return s;
      });
      if (names.length === 0) throw invalid(`${at}.names must not be empty`);
      return { ip: ip(`${at}.ip`, h.ip), names };
    });
  }
  if (config.hostname !== undefined) args.hostname = str('hostname', config.hostname, HOSTNAME, 'a host name (1-64 of [a-zA-Z0-9.-], starting with a letter or digit)');
  return args;
}

export function parseConfiguredInterfaces(result: JsonObject): ConfiguredInterface[] {
  const list = result.interfaces;
  if (!Array.isArray(list)) throw resultError('configure_network', 'interfaces', 'an array', list);
  return list.map((item, i) => {
    const at = `interfaces[${i}]`;
    if (!isJsonObject(item)) throw resultError('configure_network', at, 'an object', item);
    for (const key of ['mac', 'name'] as const) if (typeof item[key] !== 'string') throw resultError('configure_network', `${at}.${key}`, 'a string', item[key]);
    for (const key of ['mtu', 'index'] as const) if (!Number.isInteger(item[key])) throw resultError('configure_network', `${at}.${key}`, 'an integer', item[key]);
    return { mac: item.mac as string, name: item.name as string, mtu: item.mtu as number, index: item.index as number };
  });
}
