// docker's confinement flags for `virtc run` and `virtc container create`: --privileged,
// --cap-add/--cap-drop (names with or without CAP_, any case, or ALL) and --security-opt
// seccomp=unconfined|PATH / no-new-privileges[=true|false].
import { readFileSync } from 'node:fs';
import type { SecurityConfig } from '../model/container-security.js';
import { CAPABILITY_NAMES, isCapabilityName, normalizeCapabilityName } from '../oci/capabilities.js';
import { DEFAULT_CAPABILITIES } from '../oci/defaults.js';
import { stringList, UsageError } from './args.js';

export const securityOptions = {
  privileged: { type: 'boolean', usage: '[--privileged]' },
  'cap-add': { type: 'string', multiple: true, usage: '[--cap-add CAP]...' },
  'cap-drop': { type: 'string', multiple: true, usage: '[--cap-drop CAP]...' },
  'security-opt': { type: 'string', multiple: true, usage: '[--security-opt seccomp=unconfined|PATH|no-new-privileges]...' },
} as const;

function capabilityNames(flag: string, values: string[]): string[] {
  return values.map((value) => {
    const name = normalizeCapabilityName(value);
    if (name !== 'ALL' && !isCapabilityName(name)) throw new UsageError(`${flag}: unknown capability ${JSON.stringify(value)}`);
    return name;
  });
}

function seccompProfile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--security-opt seccomp=${path}: cannot read it: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--security-opt seccomp=${path}: not JSON: ${(err as Error).message}`);
  }
}

/** The container config's `security` from the flags; undefined when none was given. */
export function securityFrom(values: Record<string, unknown>): SecurityConfig | undefined {
  const adds = capabilityNames('--cap-add', stringList(values['cap-add']));
  const drops = capabilityNames('--cap-drop', stringList(values['cap-drop']));
  const opts = stringList(values['security-opt']);
  const security: SecurityConfig = {};
  if (values.privileged === true) security.privileged = true;
  if (adds.length || drops.length) {
    // As docker: start from the default (or, privileged, every) set; drops first, then adds.
    let caps = new Set<string>(security.privileged ? CAPABILITY_NAMES : DEFAULT_CAPABILITIES);
    if (drops.includes('ALL')) caps = new Set();
    for (const d of drops) caps.delete(d);
    for (const a of adds.includes('ALL') ? CAPABILITY_NAMES : adds) caps.add(a);
    const set = [...caps];
    security.capabilities = { bounding: set, effective: set, permitted: set };
  }
  for (const opt of opts) {
    const eq = opt.search(/[=:]/);
    const key = eq < 0 ? opt : opt.slice(0, eq);
    const value = eq < 0 ? undefined : opt.slice(eq + 1);
    if (key === 'no-new-privileges' && (value === undefined || value === 'true' || value === 'false')) {
      security.noNewPrivileges = value !== 'false';
    } else if (key === 'seccomp' && value) {
      security.seccomp = value === 'unconfined' ? 'unconfined' : seccompProfile(value);
    } else {
      throw new UsageError(`--security-opt: unsupported ${JSON.stringify(opt)} (seccomp=unconfined|PATH, no-new-privileges[=true|false])`);
    }
  }
  return Object.keys(security).length ? security : undefined;
}
