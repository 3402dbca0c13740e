/**
 * Arguments and results of the v1 ops with dedicated client methods (docs/agent-protocol.md,
 * "Requests"): checked here so that errors name the field and value before anything is sent,
 * and so that a result of the wrong shape is reported instead of passed on.
 */
import { AgentError, describeValue } from './errors.js';
import { isJsonObject } from './decoder.js';
import type { JsonObject } from './protocol.js';

const UINT32_MAX = 0xffff_ffff;

export interface ExecOptions {
  argv: string[];
  /** `K=V` strings, or an object of them. Added to the agent's default PATH. */
  env?: string[] | Record<string, string>;
  cwd?: string;
  tty?: boolean;
  rows?: number;
  cols?: number;
}

export interface GuestInfo {
  kernelRelease: string;
  uptimeSec: number;
  memTotalKiB: number;
  memAvailableKiB: number;
  cpus: number;
  agent: string;
  /** Which restore of a snapshot this VM is (docs/snapshots.md); 0 for a cold boot. */
  epoch: number;
}

export function isProcessId(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= UINT32_MAX;
}

export function resultError(op: string, field: string, expected: string, value: unknown): AgentError {
  return new AgentError('AGENT_PROTOCOL', `${op} result: "${field}" must be ${expected}, got ${describeValue(value)}`, { op });
}

export function parseGuestInfo(result: JsonObject): GuestInfo {
  const strings = ['kernelRelease', 'agent'] as const;
  const numbers = ['uptimeSec', 'memTotalKiB', 'memAvailableKiB', 'cpus'] as const;
  for (const key of strings) if (typeof result[key] !== 'string') throw resultError('guest_info', key, 'a string', result[key]);
  for (const key of numbers) {
    const value = result[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw resultError('guest_info', key, 'a non-negative number', value);
  }
  // An agent from before snapshots has no epoch: it was cold-booted.
  const epoch = result.epoch ?? 0;
  if (!Number.isInteger(epoch) || (epoch as number) < 0 || (epoch as number) > 0xffffffff) throw resultError('guest_info', 'epoch', 'an integer from 0 to 4294967295', epoch);
  return {
    kernelRelease: result.kernelRelease as string,
    uptimeSec: result.uptimeSec as number,
    memTotalKiB: result.memTotalKiB as number,
    memAvailableKiB: result.memAvailableKiB as number,
    cpus: result.cpus as number,
    agent: result.agent as string,
    epoch: epoch as number,
  };
}

/** Checks what the agent would otherwise truncate or reject, naming the field and value. */
export function execArguments(exec: ExecOptions): JsonObject {
  const invalid = (message: string): AgentError => new AgentError('AGENT_INVALID_ARGUMENT', `exec: ${message}`, { op: 'exec' });
  const cString = (field: string, value: unknown): string => {
    if (typeof value !== 'string') throw invalid(`${field} must be a string, got ${describeValue(value)}`);
    // The agent passes these to execve as C strings: a NUL would silently cut them short.
    if (value.includes('\0')) throw invalid(`${field} contains a NUL character: ${describeValue(value)}`);
    return value;
  };
  if (!isJsonObject(exec)) throw invalid(`options must be an object, got ${describeValue(exec)}`);
  const { argv, env, cwd, tty, rows, cols } = exec;
  if (!Array.isArray(argv) || argv.length === 0) throw invalid(`argv must be a non-empty array of strings, got ${describeValue(argv)}`);
  const args: JsonObject = { argv: argv.map((arg, i) => cString(`argv[${i}]`, arg)) };
  if (argv[0] === '') throw invalid('argv[0] must not be empty');
  if (env !== undefined) {
    const list = Array.isArray(env)
      ? env.map((entry, i) => cString(`env[${i}]`, entry))
      : isJsonObject(env)
        ? Object.entries(env).map(([key, value]) => `${cString(`env key ${describeValue(key)}`, key)}=${cString(`env.${key}`, value)}`)
        : null;
    if (list === null) throw invalid(`env must be an array of "K=V" strings or an object, got ${describeValue(env)}`);
    for (const [i, entry] of list.entries()) {
      if (entry.indexOf('=') <= 0) throw invalid(`env[${i}] must look like K=V, got ${describeValue(entry)}`);
    }
    args.env = list;
  }
  if (cwd !== undefined) args.cwd = cString('cwd', cwd);
  if (tty !== undefined) {
    if (typeof tty !== 'boolean') throw invalid(`tty must be a boolean, got ${describeValue(tty)}`);
    args.tty = tty;
  }
  for (const [name, value] of [['rows', rows], ['cols', cols]] as const) {
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw invalid(`${name} must be an integer 0..65535, got ${describeValue(value)}`);
    args[name] = value;
  }
  return args;
}
