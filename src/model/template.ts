// Pod templates (docs/snapshots.md, "API"): what createTemplate takes, and template.json, the
// record a finished template keeps beside its snapshot files.
import { z } from 'zod';
import { VcError } from '../errors.js';
import { describeInput } from './config-errors.js';
import { podConfigSchema } from './pod-config.js';

/** Like a pod id, so `template-<name>` (the pod a template is made from) is one too. */
export const TEMPLATE_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,53}$/;
const nameMessage = 'must be 1-54 characters of letters, digits, _ . - starting with a letter or digit';

export const templateNameSchema = z.string().regex(TEMPLATE_NAME_PATTERN, nameMessage);

/**
 * A template is a booted pod frozen before any container exists: a pod config without an id or
 * containers, plus the template's name.
 */
export const templateConfigSchema = podConfigSchema.omit({ id: true, containers: true, template: true }).extend({
  name: templateNameSchema,
});

export type TemplateConfigInput = z.input<typeof templateConfigSchema>;
export type TemplateConfig = z.output<typeof templateConfigSchema>;

export function parseTemplateConfig(input: unknown): TemplateConfig {
  const result = templateConfigSchema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new VcError('INVALID_CONFIG', `invalid template config: ${describeInput(result.error.issues)}`, { cause: result.error });
}

/** The pod a template is booted as (a real pod, so every crash-only path of pods covers it). */
export function templatePodId(name: string): string {
  return `template-${name}`;
}

/** template.json. */
export interface TemplateRecord {
  version: 1;
  name: string;
  hypervisor: 'kvm';
  vcpus: number;
  memoryMiB: number;
  /** `vc-vmm --version` when the snapshot was taken: a different vc-vmm refuses it (docs/snapshots.md). */
  vmmVersion: string;
  createdAt: string;
  kernel: { path: string; release: string };
  initrd: { path: string; digest: string };
  /** The template VM's NICs, in order: a restored pod needs as many, and its guest gets their MACs changed. */
  nics: { mac: string; mtu: number }[];
  /** Sizes of the snapshot's files. */
  bytes: { state: number; memory: number };
}

const recordSchema = z.strictObject({
  version: z.literal(1),
  name: templateNameSchema,
  hypervisor: z.literal('kvm'),
  vcpus: z.number().int().min(1),
  memoryMiB: z.number().int().min(1),
  vmmVersion: z.string().min(1),
  createdAt: z.string().min(1),
  kernel: z.strictObject({ path: z.string().min(1), release: z.string() }),
  initrd: z.strictObject({ path: z.string().min(1), digest: z.string() }),
  nics: z.array(z.strictObject({ mac: z.string(), mtu: z.number().int() })),
  bytes: z.strictObject({ state: z.number().int().min(0), memory: z.number().int().min(0) }),
});

/** template.json as read back: STATE_CORRUPT, naming the file and the bad field, if it is not one. */
export function parseTemplateRecord(text: string, path: string): TemplateRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new VcError('STATE_CORRUPT', `${path}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  const result = recordSchema.safeParse(value, { reportInput: true });
  if (!result.success) throw new VcError('STATE_CORRUPT', `${path}: ${describeInput(result.error.issues)}`, { cause: result.error });
  return result.data;
}
