/**
 * A container's OCI spec as a ContainerConfig (the API's container), with the warnings the front end logs
 * once for what a VM does not apply. Kernel filesystems of `mounts` are made in the guest; bind
 * mounts of host paths are copied in (no shared filesystem); the rest is refused by name.
 */
import { VcError } from '../errors.js';
import { envRecord, validHostname, type OciProcess, type OciResources, type OciSpec } from './spec.js';

/** Filesystems the guest agent makes itself (ContainerConfig.guestMounts). */
const GUEST_FS = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2']);
const MiB = 1024 * 1024;

export interface Translated {
  config: Record<string, unknown>;
  warnings: string[];
}

function refuse(field: string, message: string): VcError {
  return new VcError('INVALID_CONFIG', `config.json: ${field}: ${message}`);
}

/** The process part, shared by a task's init and its execs. */
export function processFields(proc: OciProcess, field: string, warnings: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {
    command: proc.args,
    entrypoint: [],
    env: envRecord(proc.env),
    workdir: proc.cwd,
    user: `${proc.user.uid}:${proc.user.gid}`,
    tty: proc.terminal,
  };
  if (proc.user.additionalGids?.length) out.additionalGids = proc.user.additionalGids;
  const security: Record<string, unknown> = {};
  if (proc.capabilities) {
    const caps: Record<string, string[]> = {};
    for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const) caps[set] = proc.capabilities[set] ?? [];
    security.capabilities = caps;
  } else {
    // An OCI process without capabilities has none (runc gives it an empty set).
    security.capabilities = { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] };
  }
  if (proc.noNewPrivileges !== undefined) security.noNewPrivileges = proc.noNewPrivileges;
  out.security = security;
  if (proc.rlimits?.length) out.rlimits = proc.rlimits.map((r) => ({ type: r.type, soft: r.soft, hard: r.hard }));
  if (proc.oomScoreAdj !== undefined) out.oomScoreAdj = proc.oomScoreAdj;
  if (proc.apparmorProfile) warnings.push(`${field}.apparmorProfile ${JSON.stringify(proc.apparmorProfile)}: not applied (the guest kernel has no AppArmor; the VM is the boundary)`);
  if (proc.selinuxLabel) warnings.push(`${field}.selinuxLabel: not applied (the guest kernel has no SELinux)`);
  if (proc.user.umask !== undefined) warnings.push(`${field}.user.umask: not applied`);
  return out;
}

export function limitsFromResources(resources: OciResources | undefined, field: string, warnings: string[]): Record<string, number> {
  const limits: Record<string, number> = {};
  if (!resources) return limits;
  const memory = resources.memory?.limit;
  if (memory !== undefined && memory > 0) limits.memoryMiB = Math.max(4, Math.ceil(memory / MiB));
  const { quota, period } = resources.cpu ?? {};
  if (quota !== undefined && quota > 0) limits.cpus = Math.max(0.01, quota / (period && period > 0 ? period : 100_000));
  if (resources.pids?.limit !== undefined && resources.pids.limit > 0) limits.pids = resources.pids.limit;
  if (resources.cpu?.shares !== undefined && resources.cpu.shares !== 1024 && resources.cpu.shares !== 0) {
    warnings.push(`${field}.cpu.shares ${resources.cpu.shares}: not applied (one container's VM has its own vCPUs)`);
  }
  if (resources.cpu?.cpus) warnings.push(`${field}.cpu.cpus ${JSON.stringify(resources.cpu.cpus)}: not applied (guest vCPUs are not host CPUs)`);
  if (resources.memory?.swap !== undefined && resources.memory.swap > 0 && resources.memory.swap !== memory) {
    warnings.push(`${field}.memory.swap: not applied (the guest has no swap)`);
  }
  if (resources.devices?.length) warnings.push(`${field}.devices: not applied (the container sees only the VM's devices)`);
  return limits;
}

/** The container (of the same pod) whose init has this pid as the front end reported it, if any. */
export type ContainerOfPid = (pid: number) => string | undefined;

const NS_PATH = /^\/proc\/([1-9][0-9]*)\/ns\/([a-z]+)$/;

/**
 * linux.namespaces entries with a path, as ContainerConfig.joinNamespaces. CRI's members name the
 * sandbox's namespaces as /proc/<sandbox task pid>/ns/<type>: pid and ipc map to the container
 * with that init; network is the pod's own (the VM's), uts is the pod's host name, which members
 * get anyway (task-service.ts). Any other path cannot be honoured and is refused by name.
 */
function joinedNamespaces(spec: OciSpec, containerOfPid: ContainerOfPid): Record<string, string> {
  const join: Record<string, string> = {};
  spec.linux.namespaces.forEach((n, i) => {
    if (n.path === undefined || n.type === 'network' || n.type === 'uts') return;
    const field = `linux.namespaces[${i}].path`;
    if (n.type !== 'pid' && n.type !== 'ipc') {
      throw refuse(field, `${JSON.stringify(n.path)}: joining an existing ${n.type} namespace is not supported (only pid and ipc, of a container of this pod)`);
    }
    const m = NS_PATH.exec(n.path);
    const target = m && m[2] === n.type ? containerOfPid(Number(m[1])) : undefined;
    if (!target) throw refuse(field, `${JSON.stringify(n.path)} is not the ${n.type} namespace of a container of this pod (expected /proc/<pid of one of its tasks>/ns/${n.type})`);
    join[n.type] = target;
  });
  return join;
}

export function containerFromSpec(spec: OciSpec, id: string, rootfs: string, containerOfPid: ContainerOfPid = () => undefined): Translated {
  const warnings: string[] = [];
  if (spec.linux.uidMappings?.length || spec.linux.gidMappings?.length || spec.linux.namespaces.some((n) => n.type === 'user')) {
    throw refuse('linux.namespaces', 'a user namespace is not supported (the VM is the isolation boundary)');
  }
  const config: Record<string, unknown> = { id, rootfs, ...processFields(spec.process, 'process', warnings) };
  const join = joinedNamespaces(spec, containerOfPid);
  if (Object.keys(join).length) config.joinNamespaces = join;
  const hostname = validHostname(spec.hostname);
  if (spec.hostname && !hostname) throw refuse('hostname', `${JSON.stringify(spec.hostname)} is not a valid host name`);
  if (hostname) config.hostname = hostname;
  const limits = limitsFromResources(spec.linux.resources, 'linux.resources', warnings);
  if (Object.keys(limits).length) config.limits = limits;
  const security = config.security as Record<string, unknown>;
  if (spec.linux.seccomp) security.seccomp = spec.linux.seccomp;
  else security.seccomp = 'unconfined';
  security.maskedPaths = spec.linux.maskedPaths ?? [];
  security.readonlyPaths = spec.linux.readonlyPaths ?? [];
  if (spec.linux.sysctl && Object.keys(spec.linux.sysctl).length) config.sysctls = spec.linux.sysctl;
  if (spec.linux.devices?.length) warnings.push('linux.devices: not created (the container sees only the VM\'s devices)');
  if (spec.root?.readonly) warnings.push('root.readonly: not applied yet (the container\'s writable layer stays writable)');

  const guestMounts: Array<Record<string, unknown>> = [];
  const hostMounts: Array<Record<string, unknown>> = [];
  spec.mounts.forEach((m, i) => {
    const options = m.options ?? [];
    const isBind = m.type === 'bind' || options.includes('bind') || options.includes('rbind');
    if (isBind && m.destination === '/dev/shm') {
      // CRI binds the sandbox's shm directory here (a host tmpfs the guest cannot see). A member
      // that joins the sandbox's IPC namespace gets the sandbox container's /dev/shm in the guest
      // (the agent shares it); any other container has a tmpfs of its own.
      if (!join.ipc) warnings.push('mounts: a /dev/shm bind becomes a tmpfs of the container in the guest (shared only with containers that join its IPC namespace)');
    } else if (isBind) {
      if (!m.source) throw refuse(`mounts[${i}].source`, `a bind mount of ${m.destination} needs a source`);
      hostMounts.push({ source: m.source, destination: m.destination, readOnly: options.includes('ro') });
    } else if (m.type && GUEST_FS.has(m.type)) {
      guestMounts.push({ destination: m.destination, type: m.type, ...(m.source ? { source: m.source } : {}), options });
    } else {
      throw refuse(`mounts[${i}].type`, `${JSON.stringify(m.type)} at ${m.destination} cannot be mounted in the VM (supported: bind, ${[...GUEST_FS].join(', ')})`);
    }
  });
  if (guestMounts.length) config.guestMounts = guestMounts;
  if (hostMounts.length) config.mounts = hostMounts;
  return { config, warnings };
}

/** Drops what this build's ContainerConfig does not know, with a warning naming each field. */
export function supportedFields(config: Record<string, unknown>, known: ReadonlySet<string>, warnings: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (known.has(key)) out[key] = value;
    else warnings.push(`${key}: not applied (this build of virtcontainers has no ContainerConfig.${key})`);
  }
  return out;
}
