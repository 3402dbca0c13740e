/**
 * An exec's process: `exec -p process.json` gives a whole OCI process; `exec ID CMD…` takes the
 * container's own process (from its bundle) with the command, `--env`, `--cwd`, `--user` and
 * `--tty` put over it, as runc does. Either way it becomes enterContainer's options through the same
 * translation as the shim's execs (processFields).
 */
import { VcError } from '../errors.js';
import type { ContainerExecOptions } from '../api/container-process.js';
import { processFields } from '../oci/container-from-spec.js';
import { parseProcess, type OciProcess } from '../oci/spec.js';

export interface ExecOverrides {
  args: string[];
  env?: string[];
  cwd?: string;
  user?: string;
  tty?: boolean;
}

/** `--user UID[:GID]` as runc takes it: numbers only. */
export function parseUser(text: string): { uid: number; gid: number } {
  const m = /^([0-9]+)(?::([0-9]+))?$/.exec(text);
  if (!m) throw new VcError('INVALID_CONFIG', `--user: expected UID or UID:GID (numbers), got ${JSON.stringify(text)}`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
}

export function execProcess(base: OciProcess, given: { process?: unknown; overrides?: ExecOverrides }): OciProcess {
  if (given.process !== undefined) return parseProcess(given.process, 'exec process');
  const o = given.overrides;
  if (!o || o.args.length === 0) throw new VcError('INVALID_CONFIG', 'exec: a command (or --process FILE) is required');
  const raw: Record<string, unknown> = {
    ...base,
    args: o.args,
    env: [...base.env, ...(o.env ?? [])],
    terminal: o.tty === true,
  };
  if (o.cwd) raw.cwd = o.cwd;
  if (o.user) raw.user = { ...base.user, ...parseUser(o.user), additionalGids: undefined };
  delete raw.consoleSize;
  return parseProcess(raw, 'exec process');
}

export function execOptions(proc: OciProcess, tty: boolean, rows: number, cols: number): ContainerExecOptions {
  const fields = processFields(proc, 'exec process', []);
  return {
    env: fields.env as Record<string, string>,
    cwd: proc.cwd,
    user: fields.user as string,
    tty,
    security: {
      capabilities: (fields.security as { capabilities: Record<string, string[]> }).capabilities as never,
      ...(proc.noNewPrivileges !== undefined ? { noNewPrivileges: proc.noNewPrivileges } : {}),
    },
    ...(fields.rlimits ? { rlimits: fields.rlimits as never } : {}),
    ...(fields.additionalGids ? { additionalGids: fields.additionalGids as number[] } : {}),
    ...(tty && rows > 0 && cols > 0 ? { rows, cols } : {}),
  };
}
