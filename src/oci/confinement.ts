// A container config's confinement as the agent takes it (docs/agent-protocol.md,
// "Confinement"): capability names as masks, the seccomp profile compiled to BPF, rlimit names
// as numbers, with the OCI defaults (oci/defaults.ts) for whatever the config leaves out.
import { RLIMIT_TYPES, type GuestMount, type RlimitConfig, type SecurityConfig } from '../model/container-security.js';
import { CAPABILITY_NAMES, capabilityMask } from './capabilities.js';
import { DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from './defaults.js';
import { compileSeccomp, defaultSeccompProfile } from './seccomp/index.js';

export interface AgentCaps { bounding: number; effective: number; permitted: number; inheritable: number; ambient: number }
export interface AgentSecurity {
  caps?: AgentCaps;
  noNewPrivileges?: boolean;
  seccomp?: { filter: string };
  maskedPaths?: string[];
  readonlyPaths?: string[];
}
export interface AgentRlimit { resource: number; soft: number | null; hard: number | null }
export interface AgentMount { destination: string; type: string; source?: string; options?: string[] }

/** What create_container takes besides the process. */
export interface AgentConfinement {
  security: AgentSecurity;
  rlimits?: AgentRlimit[];
  sysctls?: Record<string, string>;
  oomScoreAdj?: number;
  additionalGids?: number[];
  mounts?: AgentMount[];
}

export interface ConfinementConfig {
  security?: SecurityConfig;
  rlimits?: RlimitConfig[];
  sysctls?: Record<string, string>;
  oomScoreAdj?: number;
  additionalGids?: number[];
  guestMounts?: GuestMount[];
}

function agentCaps(capabilities: SecurityConfig['capabilities'], privileged: boolean): AgentCaps {
  if (!capabilities) {
    const base = capabilityMask(privileged ? CAPABILITY_NAMES : DEFAULT_CAPABILITIES);
    return { bounding: base, effective: base, permitted: base, inheritable: 0, ambient: 0 };
  }
  return {
    bounding: capabilityMask(capabilities.bounding ?? []),
    effective: capabilityMask(capabilities.effective ?? []),
    permitted: capabilityMask(capabilities.permitted ?? []),
    inheritable: capabilityMask(capabilities.inheritable ?? []),
    ambient: capabilityMask(capabilities.ambient ?? []),
  };
}

function seccompFilter(seccomp: SecurityConfig['seccomp'], privileged: boolean): { filter: string } | undefined {
  const choice = seccomp ?? (privileged ? 'unconfined' : 'default');
  if (choice === 'unconfined') return undefined;
  const profile = choice === 'default' ? defaultSeccompProfile() : choice;
  return { filter: compileSeccomp(profile, 'security.seccomp').toString('base64') };
}

const limitValue = (v: number | null): number | null => (v === null || v > Number.MAX_SAFE_INTEGER ? null : v);

export function agentRlimits(rlimits: RlimitConfig[]): AgentRlimit[] {
  return rlimits.map((r) => ({ resource: RLIMIT_TYPES.indexOf(r.type), soft: limitValue(r.soft), hard: limitValue(r.hard) }));
}

/** create_container's confinement: always a `security` object (the OCI defaults at least). */
export function agentConfinement(config: ConfinementConfig): AgentConfinement {
  const sec = config.security ?? {};
  const privileged = sec.privileged === true;
  const security: AgentSecurity = {
    caps: agentCaps(sec.capabilities, privileged),
    noNewPrivileges: sec.noNewPrivileges ?? false,
    maskedPaths: [...(sec.maskedPaths ?? (privileged ? [] : DEFAULT_MASKED_PATHS))],
    readonlyPaths: [...(sec.readonlyPaths ?? (privileged ? [] : DEFAULT_READONLY_PATHS))],
  };
  const seccomp = seccompFilter(sec.seccomp, privileged);
  if (seccomp) security.seccomp = seccomp;
  const out: AgentConfinement = { security };
  if (config.rlimits?.length) out.rlimits = agentRlimits(config.rlimits);
  if (config.sysctls && Object.keys(config.sysctls).length) out.sysctls = { ...config.sysctls };
  if (config.oomScoreAdj !== undefined) out.oomScoreAdj = config.oomScoreAdj;
  if (config.additionalGids?.length) out.additionalGids = [...config.additionalGids];
  const mounts: AgentMount[] = (config.guestMounts ?? []).map((m) => ({ ...m }));
  // A privileged container may write /sys, as with docker --privileged (the agent mounts it ro).
  if (privileged && !mounts.some((m) => m.destination === '/sys')) {
    mounts.unshift({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'rw'] });
  }
  if (mounts.length) out.mounts = mounts;
  return out;
}

/** What one exec_container may override (checked: model execConfinementSchema); absent pieces keep the container's. */
export interface ExecConfinementConfig {
  security?: Pick<SecurityConfig, 'capabilities' | 'noNewPrivileges' | 'seccomp'>;
  rlimits?: RlimitConfig[];
  additionalGids?: number[];
}

export function agentExecConfinement(config: ExecConfinementConfig): Record<string, unknown> {
  const security: AgentSecurity = {};
  const sec = config.security ?? {};
  if (sec.capabilities) security.caps = agentCaps(sec.capabilities, false);
  if (sec.noNewPrivileges !== undefined) security.noNewPrivileges = sec.noNewPrivileges;
  if (sec.seccomp !== undefined) {
    // 'unconfined' for one process: a filter that allows everything replaces the container's.
    security.seccomp = seccompFilter(sec.seccomp, false) ?? { filter: ALLOW_ALL_FILTER };
  }
  const out: Record<string, unknown> = {};
  if (Object.keys(security).length) out.security = security;
  if (config.rlimits) out.rlimits = agentRlimits(config.rlimits);
  if (config.additionalGids) out.additionalGids = [...config.additionalGids];
  return out;
}

/** `ret SECCOMP_RET_ALLOW`: one sock_filter {code 0x06, jt 0, jf 0, k 0x7fff0000}. */
const ALLOW_ALL_FILTER = Buffer.from([0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]).toString('base64');
