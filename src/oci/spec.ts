/**
 * An OCI runtime spec (the bundle's config.json, or an Exec's process) → what the API takes. What
 * the VM cannot honour is refused with an error naming the field, or — where runc users' defaults
 * put it in every spec (devices cgroup rules, AppArmor) — reported once as a warning for the log.
 * Shared by the containerd shim (src/shim) and the runc-compatible CLI (src/oci-runtime).
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { describeInput } from '../model/config-errors.js';
import { HOSTNAME_PATTERN } from '../model/hostname.js';
import { VcError } from '../errors.js';

const userSchema = z.looseObject({
  uid: z.number().int().min(0).default(0),
  gid: z.number().int().min(0).default(0),
  additionalGids: z.array(z.number().int().min(0)).optional(),
  umask: z.number().int().optional(),
  username: z.string().optional(),
});
const capSet = z.array(z.string()).optional();
export const processSchema = z.looseObject({
  terminal: z.boolean().default(false),
  consoleSize: z.looseObject({ height: z.number().int(), width: z.number().int() }).optional(),
  user: userSchema.default({ uid: 0, gid: 0 }),
  args: z.array(z.string()).min(1, 'must name the program to run'),
  env: z.array(z.string()).default([]),
  cwd: z.string().regex(/^\//, 'must be an absolute path').default('/'),
  capabilities: z.looseObject({ bounding: capSet, effective: capSet, permitted: capSet, inheritable: capSet, ambient: capSet }).optional(),
  rlimits: z.array(z.looseObject({ type: z.string(), hard: z.number(), soft: z.number() })).optional(),
  noNewPrivileges: z.boolean().optional(),
  apparmorProfile: z.string().optional(),
  oomScoreAdj: z.number().int().optional(),
  selinuxLabel: z.string().optional(),
});
export type OciProcess = z.output<typeof processSchema>;

const mountSchema = z.looseObject({
  destination: z.string().regex(/^\//, 'must be an absolute path'),
  type: z.string().optional(),
  source: z.string().optional(),
  options: z.array(z.string()).optional(),
});
const resourcesSchema = z.looseObject({
  memory: z.looseObject({ limit: z.number().optional(), reservation: z.number().optional(), swap: z.number().optional() }).optional(),
  cpu: z.looseObject({ shares: z.number().optional(), quota: z.number().optional(), period: z.number().optional(), cpus: z.string().optional() }).optional(),
  pids: z.looseObject({ limit: z.number() }).optional(),
  devices: z.array(z.unknown()).optional(),
}).optional();
export type OciResources = NonNullable<z.output<typeof resourcesSchema>>;

const specSchema = z.looseObject({
  ociVersion: z.string().optional(),
  process: processSchema,
  root: z.looseObject({ path: z.string().min(1), readonly: z.boolean().optional() }).optional(),
  hostname: z.string().optional(),
  mounts: z.array(mountSchema).default([]),
  annotations: z.record(z.string(), z.string()).default({}),
  linux: z.looseObject({
    namespaces: z.array(z.looseObject({ type: z.string(), path: z.string().optional() })).default([]),
    uidMappings: z.array(z.unknown()).optional(),
    gidMappings: z.array(z.unknown()).optional(),
    sysctl: z.record(z.string(), z.string()).optional(),
    resources: resourcesSchema,
    cgroupsPath: z.string().optional(),
    seccomp: z.looseObject({}).optional(),
    maskedPaths: z.array(z.string()).optional(),
    readonlyPaths: z.array(z.string()).optional(),
    devices: z.array(z.unknown()).optional(),
  }).default({ namespaces: [] }),
});
export type OciSpec = z.output<typeof specSchema>;

/** Bad input in a spec: INVALID_CONFIG, which each front end answers as its own "invalid argument". */
function invalid(what: string, message: string): VcError {
  return new VcError('INVALID_CONFIG', `${what}: ${message}`);
}

export async function readBundleSpec(bundle: string): Promise<OciSpec> {
  const file = join(bundle, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw invalid(file, `cannot read the OCI runtime spec: ${(err as Error).message}`);
  }
  return parseSpec(raw, file);
}

export function parseSpec(raw: unknown, what: string): OciSpec {
  const result = specSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw invalid(what, describeInput(result.error.issues));
  return result.data;
}

export function parseProcess(raw: unknown, what: string): OciProcess {
  const result = processSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw invalid(what, describeInput(result.error.issues));
  return result.data;
}

/** The container's network as the spec gives it: a namespace path, a fresh (empty) one, or the host's. */
export type SpecNetwork = { kind: 'path'; path: string } | { kind: 'new' } | { kind: 'host' };

export function specNetwork(spec: OciSpec): SpecNetwork {
  const ns = spec.linux.namespaces.find((n) => n.type === 'network');
  if (!ns) return { kind: 'host' };
  return ns.path ? { kind: 'path', path: ns.path } : { kind: 'new' };
}

export function envRecord(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of env) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** The root directory of the container: `root.path`, relative to the bundle unless absolute. */
export function specRootPath(spec: OciSpec, bundle: string): string {
  const path = spec.root?.path ?? 'rootfs';
  return isAbsolute(path) ? path : join(bundle, path);
}

export function validHostname(name: string | undefined): string | undefined {
  return name && HOSTNAME_PATTERN.test(name) ? name : undefined;
}
