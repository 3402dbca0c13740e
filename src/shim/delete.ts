/**
 * `<shim> … -id ID -bundle DIR delete`: containerd's clean-up after a shim exited or was killed.
 * It removes what the task left — its container (a CRI container) or its whole pod (a lone task or
 * a sandbox), the mounted rootfs, a dead shim's socket — and answers a DeleteResponse as if the
 * task had been SIGKILLed (exit 137), as runc's shim does.
 */
import { rmSync } from 'node:fs';
import { deleteContainer } from '../api/container.js';
import { deletePod } from '../api/pod.js';
import { taskMessages } from './proto/task.js';
import { timestampFromDate } from './proto/messages.js';
import { readBundleSpec } from '../oci/spec.js';
import { groupOf, podIdFor, shimRoot, taskRole, type TaskRole } from './pod-group.js';
import { unmountRootfs } from './rootfs.js';
import { shimSocketPath } from './address.js';
import { containerIdOf } from './task-service.js';
import { requireFlags, type ShimArgs } from './args.js';
import type { ShimLog } from './log.js';

export async function deleteTask(args: ShimArgs, log: ShimLog): Promise<Buffer> {
  requireFlags(args, 'namespace', 'id');
  const bundle = args.bundle || process.cwd();
  let role: TaskRole = { kind: 'alone' };
  try {
    role = taskRole((await readBundleSpec(bundle)).annotations, args.id);
  } catch (err) {
    log.warn(`delete ${args.id}: ${(err as Error).message}; cleaning up as a task of its own`);
  }
  const group = groupOf(role, args.id);
  const podId = podIdFor(group);
  const options = { root: shimRoot(args.namespace), onProgress: (m: string) => log.debug(m) };
  const gone = (err: { code?: string }): void => {
    if (!/NOT_FOUND/.test(err.code ?? '')) throw err;
  };
  if (role.kind === 'member') {
    await deleteContainer(podId, containerIdOf(args.id), { ...options, force: true }).catch((err) => {
      if (!/NOT_FOUND|NOT_RUNNING/.test((err as { code?: string }).code ?? '')) throw err;
    });
  } else {
    await deletePod(podId, { ...options, force: true }).catch(gone);
    if (args.address) rmSync(shimSocketPath(args.address, args.namespace, group), { force: true });
  }
  await unmountRootfs(bundle);
  return taskMessages.DeleteResponse.encode({ pid: 0, exitStatus: 137, exitedAt: timestampFromDate(new Date()) });
}
