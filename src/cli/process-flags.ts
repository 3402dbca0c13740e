// How a container's process runs, with docker's spellings: -e KEY=VALUE or -e KEY (the value this
// shell has, as docker takes it), -w DIR, -u USER[:GROUP], -t (and -i). Shared by `run`, `container create`
// and the `enter` commands. Each value is checked here so the error names the flag the user typed,
// not the config field it becomes.
import { stringList, UsageError } from './args.js';

export const processOptions = {
  // Accepted for docker's `-it`: here stdin is always connected, so -i changes nothing.
  interactive: { type: 'boolean', short: 'i', usage: '[-i]' },
  tty: { type: 'boolean', short: 't', usage: '[-t|--tty]' },
  env: { type: 'string', multiple: true, short: 'e', usage: '[-e|--env KEY[=VALUE]]...' },
  workdir: { type: 'string', short: 'w', usage: '[-w|--workdir DIR]' },
  user: { type: 'string', short: 'u', usage: '[-u|--user USER[:GROUP]]' },
} as const;

const USER_PATTERN = /^[^:\s]+(:[^:\s]+)?$/;

/**
 * KEY=VALUE pairs as a map. A bare KEY takes its value from `hostEnv` and, as in docker, is left
 * out when the host does not have it. A later pair for the same KEY wins.
 */
export function parseEnv(pairs: string[], hostEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key === '' || key.includes('\0')) throw new UsageError(`-e/--env: expected KEY=VALUE or KEY, got ${JSON.stringify(pair)}`);
    if (eq >= 0) env[key] = pair.slice(eq + 1);
    else if (hostEnv[key] !== undefined) env[key] = hostEnv[key]!;
  }
  return env;
}

/** The env flags' map, or undefined when none was given. */
export function envFrom(values: Record<string, unknown>, hostEnv: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  return values.env === undefined ? undefined : parseEnv(stringList(values.env), hostEnv);
}

/** -w: the guest has no idea of our working directory, so a relative one means nothing there. */
export function workdirFrom(values: Record<string, unknown>): string | undefined {
  const dir = values.workdir;
  if (typeof dir !== 'string') return undefined;
  if (!dir.startsWith('/') || dir.includes('\0')) throw new UsageError(`-w/--workdir: ${JSON.stringify(dir)} is not an absolute path`);
  return dir;
}

export function userFrom(values: Record<string, unknown>): string | undefined {
  const user = values.user;
  if (typeof user !== 'string') return undefined;
  if (!USER_PATTERN.test(user)) throw new UsageError(`-u/--user: ${JSON.stringify(user)} is not USER[:GROUP] (names or numbers)`);
  return user;
}
