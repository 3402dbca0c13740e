// Pod configuration: validated here, before anything reaches the hypervisor or native code.
import { z } from 'zod';
import { VcError } from '../errors.js';
import { containerConfigSchema } from './container-config.js';
import { describeInput } from './config-errors.js';
import { HOSTNAME_PATTERN } from './hostname.js';
import { hypervisorKinds } from './hypervisor.js';
import { dnsSchema, networkSchema } from './network.js';

export const POD_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

const kernelSchema = z.strictObject({
  path: z.string().min(1),
  modulesDir: z.string().min(1),
});

export const podConfigSchema = z.strictObject({
  id: z.string().regex(POD_ID_PATTERN, 'must be 1-63 characters of letters, digits, _ . - starting with a letter or digit'),
  hypervisor: z.enum(hypervisorKinds).default('auto'),
  vcpus: z.number().int().min(1).max(64).default(1),
  memoryMiB: z.number().int().min(128).max(65536).default(512),
  kernel: kernelSchema.optional(),
  hostname: z.string().regex(HOSTNAME_PATTERN, 'must be a valid host name').optional(),
  /** The pod's network (docs/networking.md): its own CNI bridge by default. */
  network: networkSchema.default({ mode: 'bridge' }),
  /** The pod's /etc/resolv.conf; default: the host's, without loopback name servers. */
  dns: dnsSchema.optional(),
  /**
   * Start the pod from this template's snapshot instead of booting it (docs/snapshots.md): vcpus,
   * memoryMiB and the kernel are the template's.
   */
  template: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,53}$/, 'must be a template name: 1-54 characters of letters, digits, _ . - starting with a letter or digit').optional(),
  /** Containers created and started with the pod, in order. */
  containers: z.array(containerConfigSchema).default([]).refine(
    (list) => new Set(list.map((c) => c.id)).size === list.length, 'container ids must be unique'),
});

export type PodConfigInput = z.input<typeof podConfigSchema>;
export type PodConfig = z.output<typeof podConfigSchema>;

/** Validates a pod config; the error names every bad field with the value it got. */
export function parsePodConfig(input: unknown): PodConfig {
  const result = podConfigSchema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new VcError('INVALID_CONFIG', `invalid pod config: ${describeInput(result.error.issues)}`, { cause: result.error });
}
