// Host cgroups for pods on the built-in VMM: one group per pod, `virtcontainers/<podId>` in the
// cgroup v2 hierarchy (cpu, memory, pids) or in each of the cpu, memory and pids v1 hierarchies,
// with a CPU quota, a memory limit and a pids limit. The VMM process joins it before it builds
// the VM (`vc-vmm run --cgroup DIR`). Bad input is an INVALID_CONFIG naming the field and value;
// anything the host refuses is a CGROUP_FAILED carrying the native message (path and errno text).
import { VcError } from '../errors.js';
import type { CgroupLimits, CgroupPaths } from '../model/cgroup.js';
import { native, type NativeCgroupSupport } from '../native.js';

export const CGROUP_NAME_PATTERN = /^[a-zA-Z0-9_.-]{1,63}$/;
const MIB = 1024 * 1024;
const MAX_CPUS = 4096;
const PID_MAX_LIMIT = 4194304; // the kernel's ceiling for pids.max

function invalid(message: string): never {
  throw new VcError('INVALID_CONFIG', message);
}

function failed(what: string, err: unknown): never {
  throw new VcError('CGROUP_FAILED', `${what}: ${(err as Error).message}`, { cause: err });
}

export function validateCgroupName(name: unknown): string {
  if (typeof name !== 'string' || !CGROUP_NAME_PATTERN.test(name) || name === '.' || name.includes('..'))
    invalid(`cgroup name must be 1-63 characters of letters, digits, _ . - (not "." and without ".."), not ${JSON.stringify(name)}`);
  return name;
}

export function validateCgroupLimits(limits: unknown): CgroupLimits {
  if (typeof limits !== 'object' || limits === null) invalid(`cgroup limits must be an object, not ${JSON.stringify(limits)}`);
  const { cpus, memoryBytes, pidsMax } = limits as Record<string, unknown>;
  if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus < 0.01 || cpus > MAX_CPUS)
    invalid(`cgroup limits.cpus must be a number in 0.01..${MAX_CPUS} (a CFS quota of at least 1 ms per 100 ms), not ${JSON.stringify(cpus)}`);
  if (typeof memoryBytes !== 'number' || !Number.isSafeInteger(memoryBytes) || memoryBytes < MIB)
    invalid(`cgroup limits.memoryBytes must be an integer of at least ${MIB} (1 MiB), not ${JSON.stringify(memoryBytes)}`);
  if (typeof pidsMax !== 'number' || !Number.isInteger(pidsMax) || pidsMax < 1 || pidsMax > PID_MAX_LIMIT)
    invalid(`cgroup limits.pidsMax must be an integer in 1..${PID_MAX_LIMIT}, not ${JSON.stringify(pidsMax)}`);
  return { cpus, memoryBytes, pidsMax };
}

/** Which hierarchy pods get on this host, or why none can be used. */
export function cgroupSupport(): NativeCgroupSupport {
  return native().cgroupSupport();
}

/** The `virtcontainers` parent groups that pod groups go under on this host, one per hierarchy used. */
export function podCgroupParents(): string[] {
  const support = cgroupSupport();
  if (support.version === null) return [];
  const roots = support.version === 2 ? [support.root] : [...new Set(Object.values(support.roots))];
  return roots.map((root) => `${root}/virtcontainers`);
}

/** Where `createPodCgroup(name)` puts the group on this host ([] when no hierarchy is usable). */
export function podCgroupPaths(name: string): string[] {
  const valid = validateCgroupName(name);
  return podCgroupParents().map((parent) => `${parent}/${valid}`);
}

/**
 * Creates the pod's group with its limits. Fails (CGROUP_FAILED) if the group exists already or
 * the host has no usable hierarchy; a failure leaves nothing behind.
 */
export function createPodCgroup(podId: string, limits: CgroupLimits): CgroupPaths {
  const name = validateCgroupName(podId);
  const checked = validateCgroupLimits(limits);
  try {
    return native().cgroupCreate(name, checked);
  } catch (err) {
    failed(`pod ${podId}: cannot create its cgroup`, err);
  }
}

/**
 * Kills whatever is still in the group, then removes its directories (the shared `virtcontainers`
 * parent stays). A group that is already gone is success. Gives up after `timeoutMs` (5 s).
 */
export async function removePodCgroup(paths: string[], timeoutMs = 5000): Promise<void> {
  try {
    await native().cgroupRemove(paths, timeoutMs);
  } catch (err) {
    failed(`cannot remove cgroup ${paths.join(', ')}`, err);
  }
}

/** Pids of the processes in the group, ascending. */
export function cgroupPids(paths: string[]): number[] {
  try {
    return native().cgroupPids(paths);
  } catch (err) {
    failed(`cannot list the processes of cgroup ${paths.join(', ')}`, err);
  }
}
