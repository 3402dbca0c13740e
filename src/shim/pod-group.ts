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
import { defaultRoot } from '../store/paths.js';
import type { CallOptions } from '../api/context.js';
import { RpcError, StatusCode } from './ttrpc/errors.js';

import type { TaskRole } from '../oci/pod-annotations.js';

// The annotations' meaning is shared with the runc-compatible CLI (src/oci/pod-annotations.ts).
export { CONTAINER_TYPE, SANDBOX_ID, POD_VCPUS, POD_MEMORY_MIB, POD_HYPERVISOR, taskRole, podIdFor, podConfigFor } from '../oci/pod-annotations.js';
export type { TaskRole } from '../oci/pod-annotations.js';

/** The group a task's shim serves: its sandbox's id, or its own. */
export function groupOf(role: TaskRole, id: string): string {
  return role.kind === 'member' ? role.sandboxId : id;
}

export function shimRoot(namespace: string, env: NodeJS.ProcessEnv = process.env): string {
  const ns = namespace.length <= 16 && /^[a-zA-Z0-9_.-]+$/.test(namespace)
    ? namespace : `ns-${createHash('sha256').update(namespace).digest('hex').slice(0, 12)}`;
  return join(defaultRoot(env), 'containerd', ns);
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
