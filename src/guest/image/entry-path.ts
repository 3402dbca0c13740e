// Names of layer tar entries are untrusted: they become paths below the staging root only after
// this check. Nothing absolute, no "..", no NUL, names within Linux limits. "./a//b/" is "a/b";
// "." and "./" name the root itself (an empty list).
import { GuestError } from '../errors.js';

const NAME_MAX = 255;
const PATH_MAX = 4095;

export function splitEntryName(name: string, where: string): string[] {
  if (name.includes('\0')) throw new GuestError('IMAGE_INVALID', `${where}: entry ${JSON.stringify(name)} contains a NUL byte`);
  if (name.startsWith('/')) {
    throw new GuestError('IMAGE_UNSAFE', `${where}: entry "${name}" is an absolute path; layer entries must be relative to the image root`);
  }
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new GuestError('IMAGE_UNSAFE', `${where}: entry "${name}" contains "..", which could reach outside the image root`);
  if (parts.some((p) => Buffer.byteLength(p) > NAME_MAX) || Buffer.byteLength(parts.join('/')) > PATH_MAX) {
    throw new GuestError('IMAGE_INVALID', `${where}: entry "${name.slice(0, 80)}…" is longer than Linux allows (${NAME_MAX} bytes a name, ${PATH_MAX} a path)`);
  }
  return parts;
}
