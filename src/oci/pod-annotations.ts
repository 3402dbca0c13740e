/**
 * Which pod a container belongs to and how big that pod is, from the annotations of its OCI spec:
 * CRI's keys (containerd's CRI plugin sets them) put containers into one sandbox; podman's key
 * puts the containers of a `podman pod` into the pod of its infra container; ours size the pod.
 * Shared by the containerd shim and the runc-compatible CLI.
 */
import { createHash } from 'node:crypto';
import { VcError } from '../errors.js';
import { POD_ID_PATTERN } from '../model/pod-config.js';
import type { OciSpec, SpecNetwork } from './spec.js';

export const CONTAINER_TYPE = 'io.kubernetes.cri.container-type';
export const SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';
/**
 * Podman (4.x, pkg/specgen/generate) sets this on each container of a pod that has an infra
 * container, to the infra container's id; the infra container itself has none of these keys.
 */
export const PODMAN_SANDBOX_ID = 'io.kubernetes.cri-o.SandboxID';
/** Ours: the pod's size and hypervisor, read from the container that makes the pod. */
export const POD_VCPUS = 'io.virtcontainers.pod.vcpus';
export const POD_MEMORY_MIB = 'io.virtcontainers.pod.memory-mib';
export const POD_HYPERVISOR = 'io.virtcontainers.pod.hypervisor';

const MAX_POD_ID = 40;

export type TaskRole = { kind: 'alone' } | { kind: 'sandbox' } | { kind: 'member'; sandboxId: string };

function invalid(message: string): VcError {
  return new VcError('INVALID_CONFIG', message);
}

/** The role CRI's annotations give a container: a sandbox, a member of one, or a pod of its own. */
export function taskRole(annotations: Record<string, string>, id: string): TaskRole {
  const type = annotations[CONTAINER_TYPE];
  if (type === undefined) return { kind: 'alone' };
  if (type === 'sandbox') return { kind: 'sandbox' };
  if (type === 'container') {
    const sandboxId = annotations[SANDBOX_ID];
    if (!sandboxId) throw invalid(`task ${id}: annotation ${CONTAINER_TYPE}=container needs ${SANDBOX_ID}`);
    return { kind: 'member', sandboxId };
  }
  throw invalid(`task ${id}: annotation ${CONTAINER_TYPE}=${JSON.stringify(type)}: expected sandbox or container`);
}

/** CRI's keys first, then podman's: a container naming another one's sandbox joins its pod. */
export function engineRole(annotations: Record<string, string>, id: string): TaskRole {
  const cri = taskRole(annotations, id);
  if (cri.kind !== 'alone') return cri;
  const infra = annotations[PODMAN_SANDBOX_ID];
  if (infra && infra !== id) return { kind: 'member', sandboxId: infra };
  return cri;
}

/** A pod id for a group (a sandbox or container id): itself when it fits, else a prefix and a hash. */
export function podIdFor(group: string): string {
  if (group.length <= MAX_POD_ID && POD_ID_PATTERN.test(group)) return group;
  const readable = group.replace(/[^a-zA-Z0-9_.-]/g, '').replace(/^[_.-]+/, '').slice(0, 27) || 'task';
  return `${readable}-${createHash('sha256').update(group).digest('hex').slice(0, 12)}`;
}

/** The API's container id for an engine's id: itself when it fits (CRI's and podman's 64 hex digits do). */
export function containerIdFor(id: string): string {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(id) ? id : `t-${Buffer.from(id).toString('hex').slice(0, 60)}`;
}

function positiveInt(annotations: Record<string, string>, key: string): number | undefined {
  const text = annotations[key];
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text)) throw invalid(`annotation ${key}: expected a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The pod config for the container that makes the pod (a sandbox or a lone container). */
export function podConfigFor(podId: string, spec: OciSpec, network: SpecNetwork, log: { warnOnce(message: string): void }): Record<string, unknown> {
  const a = spec.annotations;
  let net: string;
  if (network.kind === 'path') net = `netns:${network.path}`;
  else {
    if (network.kind === 'host') log.warnOnce('the spec has no network namespace (host networking): a VM cannot share the host\'s network, so the pod gets none (only loopback)');
    net = 'none';
  }
  const config: Record<string, unknown> = { id: podId, network: net };
  const vcpus = positiveInt(a, POD_VCPUS);
  const memoryMiB = positiveInt(a, POD_MEMORY_MIB);
  if (vcpus !== undefined) config.vcpus = vcpus;
  if (memoryMiB !== undefined) config.memoryMiB = memoryMiB;
  if (a[POD_HYPERVISOR]) config.hypervisor = a[POD_HYPERVISOR];
  return config;
}
