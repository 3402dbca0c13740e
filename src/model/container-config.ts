// Container configuration: validated before anything reaches the agent. Image defaults
// (entrypoint, cmd, env, workdir, user) are merged in later, once the image is known.
import { z } from 'zod';
import { VcError } from '../errors.js';
import { describeInput } from './config-errors.js';
import { HOSTNAME_PATTERN } from './hostname.js';
import { confinementFields } from './container-security.js';

export const CONTAINER_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

const envName = /^[^=\0]+$/;

export const containerLimitsSchema = z.strictObject({
  memoryMiB: z.number().int().min(4).max(1 << 20).optional(),
  pids: z.number().int().min(1).max(1 << 22).optional(),
  /** CPU time as a number of CPUs (0.5 = half of one), enforced through cpu.max. */
  cpus: z.number().min(0.01).max(1024).optional(),
});

const absolutePath = z.string().regex(/^\/[^\0]*$/, 'must be an absolute path without NUL').max(4096);

/** A host file or directory shown in the container (copied in at create: api/container-files.ts). */
export const hostMountSchema = z.strictObject({
  source: absolutePath,
  destination: absolutePath.refine((d) => d !== '/', 'must not be /'),
  readOnly: z.boolean().default(false),
});

const containerId = z.string().regex(CONTAINER_ID_PATTERN, 'must be 1-64 characters of letters, digits, _ . - starting with a letter or digit');

/**
 * Namespaces of another container of the same pod that this one joins instead of getting its own,
 * by that container's id; it must be running when this one is created (docs/agent-protocol.md,
 * "Joined namespaces"). Mount and UTS namespaces are always the container's own.
 */
export const joinNamespacesSchema = z.strictObject({
  /** Its processes and this one's see each other (Kubernetes' shareProcessNamespace). */
  pid: containerId.optional(),
  /** System V IPC, POSIX message queues and /dev/shm shared (a Kubernetes pod's default). */
  ipc: containerId.optional(),
});

export const containerConfigSchema = z.strictObject({
  id: containerId,
  /** `oci:DIR[:TAG]`, `docker-archive:FILE`, `oci-archive:FILE`; neither image nor rootfs: the default busybox image. */
  image: z.string().min(1).optional(),
  /** A directory used as the image. */
  rootfs: z.string().min(1).optional(),
  /**
   * With rootfs: the caller's name for the tree's content — the same key promises the same tree,
   * so the image is built once and the directory is not hashed again (the containerd shim passes
   * the snapshot chain). A wrong promise gives a stale image.
   */
  rootfsCacheKey: z.string().min(1).max(8192).optional(),
  /** Replaces the image's Cmd (and, with entrypoint, its Entrypoint). */
  command: z.array(z.string()).min(1).optional(),
  entrypoint: z.array(z.string()).optional(),
  env: z.record(z.string().regex(envName, 'must not contain = or NUL'), z.string()).optional(),
  workdir: z.string().regex(/^\//, 'must be an absolute path').optional(),
  user: z.string().regex(/^[^:\s]+(:[^:\s]+)?$/, 'must be USER or USER:GROUP (names or numbers)').optional(),
  hostname: z.string().regex(HOSTNAME_PATTERN, 'must be a valid host name').optional(),
  tty: z.boolean().default(false),
  limits: containerLimitsSchema.optional(),
  /** Host files and directories copied into the container at create and bound at `destination`. */
  mounts: z.array(hostMountSchema).max(128).optional(),
  joinNamespaces: joinNamespacesSchema.optional(),
  /** OCI confinement (model/container-security.ts); absent pieces get the OCI defaults. */
  ...confinementFields,
}).refine((c) => !(c.image && c.rootfs), { message: 'give image or rootfs, not both', path: ['image'] })
  .superRefine((c, ctx) => {
    for (const ns of ['pid', 'ipc'] as const) {
      if (c.joinNamespaces?.[ns] === c.id) {
        ctx.addIssue({ code: 'custom', path: ['joinNamespaces', ns], message: 'must name another container of the pod, not this one', input: c.id });
      }
    }
  })
  .refine((c) => !c.rootfsCacheKey || c.rootfs, { message: 'only with rootfs', path: ['rootfsCacheKey'] });

export type ContainerConfigInput = z.input<typeof containerConfigSchema>;
export type ContainerConfig = z.output<typeof containerConfigSchema>;
export type ContainerLimits = z.output<typeof containerLimitsSchema>;
export type HostMount = z.output<typeof hostMountSchema>;
export type JoinNamespaces = z.output<typeof joinNamespacesSchema>;

export function parseContainerConfig(input: unknown, field = 'container'): ContainerConfig {
  const result = containerConfigSchema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new VcError('INVALID_CONFIG', `invalid ${field} config: ${describeInput(result.error.issues)}`, { cause: result.error });
}
