/**
 * The pod a shim serves: one per sandbox (CRI annotations) or one per plain task. Its id is the
 * group's (the sandbox or task id) when that fits a pod id, else a readable prefix and a hash; its
 * state lives under `<virtcontainers root>/containerd/<namespace>`, so two containerd namespaces
 * never share a pod id and `VC_ROOT=… virtc pod list` shows a namespace's pods.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { createPod, deletePod, startPod } from '../api/pod.js';
import { podStatus } from '../api/pod-status.js';
import { VcError } from '../errors.js';
import { POD_ID_PATTERN } from '../model/pod-config.js';
import { defaultRoot } from '../store/paths.js';
import type { CallOptions } from '../api/context.js';
import { RpcError, StatusCode } from './ttrpc/errors.js';
import type { OciSpec, SpecNetwork } from './oci-spec.js';
import type { ShimLog } from './log.js';

/** CRI's annotations that put containers into one sandbox (containerd's CRI plugin sets them). */
export const CONTAINER_TYPE = 'io.kubernetes.cri.container-type';
export const SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';
/** Ours: the pod's size and hypervisor, read from the task that makes the pod. */
export const POD_VCPUS = 'io.virtcontainers.pod.vcpus';
export const POD_MEMORY_MIB = 'io.virtcontainers.pod.memory-mib';
export const POD_HYPERVISOR = 'io.virtcontainers.pod.hypervisor';

const MAX_POD_ID = 40;

export type TaskRole = { kind: 'alone' } | { kind: 'sandbox' } | { kind: 'member'; sandboxId: string };

export function taskRole(annotations: Record<string, string>, id: string): TaskRole {
  const type = annotations[CONTAINER_TYPE];
  if (type === undefined) return { kind: 'alone' };
  if (type === 'sandbox') return { kind: 'sandbox' };
  if (type === 'container') {
    const sandboxId = annotations[SANDBOX_ID];
    if (!sandboxId) throw new RpcError(StatusCode.InvalidArgument, `task ${id}: annotation ${CONTAINER_TYPE}=container needs ${SANDBOX_ID}`);
    return { kind: 'member', sandboxId };
  }
  throw new RpcError(StatusCode.InvalidArgument, `task ${id}: annotation ${CONTAINER_TYPE}=${JSON.stringify(type)}: expected sandbox or container`);
}

/** The group a task's shim serves: its sandbox's id, or its own. */
export function groupOf(role: TaskRole, id: string): string {
  return role.kind === 'member' ? role.sandboxId : id;
}

export function podIdFor(group: string): string {
  if (group.length <= MAX_POD_ID && POD_ID_PATTERN.test(group)) return group;
  const readable = group.replace(/[^a-zA-Z0-9_.-]/g, '').replace(/^[_.-]+/, '').slice(0, 27) || 'task';
  return `${readable}-${createHash('sha256').update(group).digest('hex').slice(0, 12)}`;
}

export function shimRoot(namespace: string, env: NodeJS.ProcessEnv = process.env): string {
  const ns = namespace.length <= 16 && /^[a-zA-Z0-9_.-]+$/.test(namespace)
    ? namespace : `ns-${createHash('sha256').update(namespace).digest('hex').slice(0, 12)}`;
  return join(defaultRoot(env), 'containerd', ns);
}

function positiveInt(annotations: Record<string, string>, key: string): number | undefined {
  const text = annotations[key];
  if (text === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(text)) throw new RpcError(StatusCode.InvalidArgument, `annotation ${key}: expected a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** The pod config for the task that makes the pod (a sandbox or a lone task). */
export function podConfigFor(podId: string, spec: OciSpec, network: SpecNetwork, log: ShimLog): Record<string, unknown> {
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

/** Creates and starts the pod; an API error becomes the answer containerd shows. */
export async function bringUpPod(config: Record<string, unknown>, options: CallOptions): Promise<void> {
  const podId = config.id as string;
  try {
    await createPod(config as Parameters<typeof createPod>[0], options);
    await startPod(podId, options);
  } catch (err) {
    await deletePod(podId, { ...options, force: true }).catch(() => {});
    throw asRpcError(err, `starting the pod ${podId}`);
  }
}

export async function podIsRunning(podId: string, options: CallOptions): Promise<boolean> {
  const status = await podStatus(podId, options).catch(() => null);
  return status?.state === 'running';
}

/** An API error as a ttrpc status: not found, exists, bad input, illegal state, or internal. */
export function asRpcError(err: unknown, what: string): RpcError {
  if (err instanceof RpcError) return err;
  const code = (err as { code?: string }).code ?? '';
  const message = `${what}: ${(err as Error).message}`;
  if (/NOT_FOUND$/.test(code)) return new RpcError(StatusCode.NotFound, message);
  if (/EXISTS$/.test(code)) return new RpcError(StatusCode.AlreadyExists, message);
  if (code === 'INVALID_CONFIG' || code === 'BAD_REQUEST') return new RpcError(StatusCode.InvalidArgument, message);
  if (/NOT_RUNNING|ILLEGAL_STATE|RUNNING$/.test(code)) return new RpcError(StatusCode.FailedPrecondition, message);
  if (err instanceof VcError || code) return new RpcError(StatusCode.Internal, `${message} (${code})`);
  return new RpcError(StatusCode.Internal, message);
}
