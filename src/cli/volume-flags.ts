// -v HOST:CONTAINER[:ro] for `virtc run` and `virtc container create`: the container config's
// `mounts` (host files and directories copied into the guest at create; api/container-files.ts).
// Checked before any pod is made, so a typo costs no boot.
import { statSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import type { HostMount } from '../model/container-config.js';
import { stringList, UsageError } from './args.js';

export const volumeOptions = {
  volume: { type: 'string', short: 'v', multiple: true, usage: '[-v|--volume HOST:CONTAINER[:ro]]...' },
} as const;

const SHAPE = 'HOST:CONTAINER[:ro]';

/**
 * One -v value. HOST is absolute, or relative to `cwd` when it starts with `.` (docker takes any
 * other bare word for a named volume, which we do not have, so it is refused rather than guessed
 * at). Options after the second colon: `ro` or `rw`, comma-separated as docker writes them.
 */
export function parseVolume(spec: string, cwd = process.cwd()): HostMount {
  const bad = (why: string) => new UsageError(`-v/--volume: ${JSON.stringify(spec)}: ${why}`);
  const fields = spec.split(':');
  if (fields.length < 2 || fields.length > 3 || fields[0] === '' || fields[1] === '') {
    throw new UsageError(`-v/--volume: ${JSON.stringify(spec)} is not ${SHAPE}`);
  }
  const [host, container, options] = fields as [string, string, string | undefined];
  if (spec.includes('\0')) throw bad('contains NUL');
  if (!host.startsWith('/') && !host.startsWith('.')) {
    throw bad(`HOST ${JSON.stringify(host)} must be an absolute path or start with ./ (named volumes are not supported)`);
  }
  const source = resolve(cwd, host);
  let st;
  try {
    st = statSync(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw bad(`HOST ${source} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(err as Error).message}`}`);
  }
  if (!st.isFile() && !st.isDirectory()) throw bad(`HOST ${source} is neither a file nor a directory (only those can be copied into a container)`);
  if (!container.startsWith('/')) throw bad(`CONTAINER ${JSON.stringify(container)} is not an absolute path`);
  const destination = posix.normalize(container).replace(/(.)\/$/, '$1');
  if (destination === '/') throw bad('CONTAINER must not be /');
  let readOnly = false;
  if (options !== undefined) {
    const given = options.split(',');
    for (const option of given) {
      if (option !== 'ro' && option !== 'rw') throw bad(`unknown option ${JSON.stringify(option)} (ro or rw)`);
    }
    if (given.includes('ro') && given.includes('rw')) throw bad('ro and rw together');
    readOnly = given.includes('ro');
  }
  return { source, destination, readOnly };
}

/** The volume flags as `mounts`, or undefined when none was given; two at one path are refused. */
export function mountsFrom(values: Record<string, unknown>, cwd = process.cwd()): HostMount[] | undefined {
  const specs = stringList(values.volume);
  if (specs.length === 0) return undefined;
  const mounts = specs.map((spec) => parseVolume(spec, cwd));
  const seen = new Map<string, string>();
  mounts.forEach((m, i) => {
    const earlier = seen.get(m.destination);
    if (earlier !== undefined) throw new UsageError(`-v/--volume: ${JSON.stringify(earlier)} and ${JSON.stringify(specs[i])} both mount at ${m.destination}`);
    seen.set(m.destination, specs[i]!);
  });
  return mounts;
}
