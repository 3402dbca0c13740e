// The OCI confinement fields of a container config (docs/agent-protocol.md, "Confinement"):
// capabilities, no_new_privs, seccomp, masked/read-only paths, rlimits, sysctls, oom_score_adj,
// extra groups and filesystems made inside the guest. Absent pieces get the OCI defaults when the
// request is built (src/oci/confinement.ts); `privileged: true` changes those defaults to none.
import { z } from 'zod';
import { isCapabilityName } from '../oci/capabilities.js';

/** RLIMIT_* names in the kernel's numbering (x86_64): the index is the resource number. */
export const RLIMIT_TYPES = [
  'RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_DATA', 'RLIMIT_STACK', 'RLIMIT_CORE', 'RLIMIT_RSS',
  'RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_MEMLOCK', 'RLIMIT_AS', 'RLIMIT_LOCKS',
  'RLIMIT_SIGPENDING', 'RLIMIT_MSGQUEUE', 'RLIMIT_NICE', 'RLIMIT_RTPRIO', 'RLIMIT_RTTIME',
] as const;

export const GUEST_MOUNT_TYPES = ['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2', 'bind'] as const;

/** Absolute, without empty, `.` or `..` components (the agent refuses those too). */
export function isCleanAbsolutePath(path: string): boolean {
  if (!path.startsWith('/') || path === '/' || path.includes('\0')) return false;
  return path.slice(1).split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/**
 * Sysctls of a namespace the container has (ipc, uts) or of the pod's network namespace; any
 * other name would change the whole guest kernel.
 */
export function isNamespacedSysctl(name: string): boolean {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(name)) return false;
  return name === 'kernel.hostname' || name === 'kernel.domainname'
    || ['kernel.shm', 'kernel.msg', 'kernel.sem', 'fs.mqueue.', 'net.'].some((p) => name.startsWith(p));
}

const path = z.string().refine(isCleanAbsolutePath, 'must be an absolute path without empty, . or .. components');
const capabilityName = z.string().refine(isCapabilityName, 'is not a Linux capability name (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)');
const capabilitySet = z.array(capabilityName).optional();

/** OCI's five sets; a set left out of a given object is empty, as in an OCI config. */
export const capabilitiesSchema = z.strictObject({
  bounding: capabilitySet,
  effective: capabilitySet,
  permitted: capabilitySet,
  inheritable: capabilitySet,
  ambient: capabilitySet,
}).superRefine((caps, ctx) => {
  // What the kernel would refuse at start with a bare EPERM, named here instead.
  const outside = (set: string[] | undefined, ...of: Array<string[] | undefined>) =>
    (set ?? []).filter((cap) => !of.every((o) => (o ?? []).includes(cap)));
  const rules: Array<[keyof typeof caps, string[], string]> = [
    ['effective', outside(caps.effective, caps.permitted), 'must be within permitted'],
    ['inheritable', outside(caps.inheritable, caps.bounding), 'must be within bounding'],
    ['ambient', outside(caps.ambient, caps.permitted, caps.inheritable), 'must be within both permitted and inheritable'],
  ];
  for (const [set, bad, message] of rules) {
    if (bad.length) ctx.addIssue({ code: 'custom', path: [set], message: `${message}: ${bad.join(', ')}`, input: caps[set] });
  }
});

const seccompProfile = z.custom<Record<string, unknown>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  'must be "default", "unconfined" or an OCI LinuxSeccomp object',
);

export const securitySchema = z.strictObject({
  capabilities: capabilitiesSchema.optional(),
  noNewPrivileges: z.boolean().optional(),
  /** 'default' (our default profile), 'unconfined' (no filter) or an OCI LinuxSeccomp object. */
  seccomp: z.union([z.literal('default'), z.literal('unconfined'), seccompProfile]).optional(),
  maskedPaths: z.array(path).optional(),
  readonlyPaths: z.array(path).optional(),
  /** Every capability, no seccomp filter, nothing masked or read-only (pieces given still win). */
  privileged: z.boolean().optional(),
});

/** soft/hard: null (or anything past 2^53, as OCI's uint64 "unlimited" arrives) = no limit. */
const rlimitValue = z.number().min(0).refine(Number.isInteger, 'must be an integer').nullable();
const limitOrInfinity = (v: number | null) => (v === null || v > Number.MAX_SAFE_INTEGER ? Infinity : v);
export const rlimitsSchema = z.array(z.strictObject({
  type: z.enum(RLIMIT_TYPES),
  soft: rlimitValue,
  hard: rlimitValue,
})).superRefine((limits, ctx) => {
  const seen = new Set<string>();
  limits.forEach((l, i) => {
    const soft = limitOrInfinity(l.soft), hard = limitOrInfinity(l.hard);
    if (soft > hard) ctx.addIssue({ code: 'custom', path: [i, 'soft'], message: `must not be above hard (${l.hard})`, input: l.soft });
    if (seen.has(l.type)) ctx.addIssue({ code: 'custom', path: [i, 'type'], message: 'is given twice', input: l.type });
    seen.add(l.type);
  });
});

export const sysctlsSchema = z.record(z.string(), z.string()).superRefine((sysctls, ctx) => {
  for (const name of Object.keys(sysctls)) {
    if (!isNamespacedSysctl(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'is not a namespaced sysctl (kernel.shm*, kernel.msg*, kernel.sem*, kernel.hostname, kernel.domainname, fs.mqueue.*, net.*)', input: name });
    }
  }
});

/** A filesystem made inside the guest (an OCI config's mounts that do not come from the host). */
export const guestMountSchema = z.strictObject({
  destination: path,
  type: z.enum(GUEST_MOUNT_TYPES),
  /** For 'bind': a path inside the container; else the name the mount table shows. */
  source: z.string().min(1).optional(),
  options: z.array(z.string().min(1)).optional(),
}).superRefine((m, ctx) => {
  if (m.type === 'bind' && (!m.source || !isCleanAbsolutePath(m.source))) {
    ctx.addIssue({ code: 'custom', path: ['source'], message: 'a bind needs an absolute path inside the container', input: m.source });
  }
  if (m.destination === '/dev' && m.type !== 'tmpfs') {
    ctx.addIssue({ code: 'custom', path: ['type'], message: 'only tmpfs on /dev', input: m.type });
  }
});

export const confinementFields = {
  security: securitySchema.optional(),
  rlimits: rlimitsSchema.optional(),
  sysctls: sysctlsSchema.optional(),
  /** -1000..1000, written to /proc/<pid>/oom_score_adj of every process of the container. */
  oomScoreAdj: z.number().int().min(-1000).max(1000).optional(),
  /** Supplementary groups on top of those /etc/group gives the user. */
  additionalGids: z.array(z.number().int().min(0).max(4294967294)).optional(),
  guestMounts: z.array(guestMountSchema).optional(),
};

export type SecurityConfig = z.output<typeof securitySchema>;
export type CapabilitiesConfig = z.output<typeof capabilitiesSchema>;
export type RlimitConfig = z.output<typeof rlimitsSchema>[number];
export type GuestMount = z.output<typeof guestMountSchema>;

/** What one exec into a container may set instead of the container's (OCI's process fields). */
export const execConfinementSchema = z.strictObject({
  security: z.strictObject({
    capabilities: capabilitiesSchema.optional(),
    noNewPrivileges: z.boolean().optional(),
    seccomp: securitySchema.shape.seccomp,
  }).optional(),
  rlimits: rlimitsSchema.optional(),
  additionalGids: confinementFields.additionalGids,
});
export type ExecConfinementInput = z.input<typeof execConfinementSchema>;
