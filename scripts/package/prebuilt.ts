// What the prebuilt binaries in prebuilds/linux-x64 must be, checked by the step that makes them
// (scripts/package/prebuilds.ts) and by the packaging tests: the addon asks the loader for nothing
// but glibc (no newer than GLIBC_FLOOR) and libgcc_s (only old versions); vc-vmm, vc-agent and vc-holder are static; manifest.json lists each
// file's digest and the floor, which scripts/install.js compares with the host's glibc.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { elfDynamicNeeds, isStaticElf } from '../../src/guest/elf.js';
import { compareVersions, GLIBC_FLOOR } from '../glibc-floor.js';

export { GLIBC_FLOOR };

/**
 * The only libraries the addon may need: glibc's own, and libgcc_s (the unwinder, on every glibc
 * system and needed by Node itself). libstdc++ is linked in: hosts' C++ runtimes vary.
 */
export const ALLOWED_LIBRARIES = ['libc.so.6', 'libm.so.6', 'ld-linux-x86-64.so.2', 'libgcc_s.so.1'];
/** libgcc_s symbol versions up to GCC 4.9's, which every supported distribution has. */
const LIBGCC_FLOOR = '4.9';
/** prebuildify's name for a Node-API build tagged glibc (--tag-libc), which node-gyp-build looks for. */
export const ADDON_FILE = 'virtcontainers.glibc.node';
export const EXECUTABLES = ['vc-vmm', 'vc-agent', 'vc-holder'] as const;

export interface PrebuildManifest {
  platform: 'linux-x64';
  glibcFloor: string;
  /** file name → sha256 hex */
  files: Record<string, string>;
}

/** The problems with an addon's dynamic needs (empty when it fits the floor). */
export function addonProblems(needs: { libraries: string[]; versions: string[] }, floor = GLIBC_FLOOR): string[] {
  const problems: string[] = [];
  for (const lib of needs.libraries) {
    if (!ALLOWED_LIBRARIES.includes(lib)) problems.push(`needs ${lib} (only ${ALLOWED_LIBRARIES.join(', ')} may be needed)`);
  }
  for (const v of needs.versions) {
    const glibc = /^GLIBC_(\d+(?:\.\d+)*)$/.exec(v);
    const libgcc = /^GCC_(\d+(?:\.\d+)*)$/.exec(v);
    if (glibc) {
      if (compareVersions(glibc[1]!, floor) > 0) problems.push(`needs ${v}, newer than the stated floor glibc ${floor}`);
    } else if (libgcc) {
      if (compareVersions(libgcc[1]!, LIBGCC_FLOOR) > 0) problems.push(`needs ${v}, newer than libgcc_s ${LIBGCC_FLOOR}`);
    } else {
      problems.push(`needs symbol version ${v} (only glibc's and old libgcc_s ones may be needed)`);
    }
  }
  return problems;
}

/** Checks every file of a prebuilds/<platform> directory; throws naming each problem. */
export function checkPrebuilds(dir: string): PrebuildManifest {
  const problems: string[] = [];
  const files: Record<string, string> = {};
  for (const name of [ADDON_FILE, ...EXECUTABLES]) {
    const path = join(dir, name);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message}`);
      continue;
    }
    files[name] = createHash('sha256').update(bytes).digest('hex');
    if (name === ADDON_FILE) problems.push(...addonProblems(elfDynamicNeeds(bytes, path)).map((p) => `${path} ${p}`));
    else if (!isStaticElf(bytes, path)) problems.push(`${path} is not statically linked`);
  }
  // A stray .node (an older name, another build) could be the one node-gyp-build picks.
  for (const name of readdirSync(dir)) {
    if (!(name in files) && name !== 'manifest.json' && ![ADDON_FILE, ...EXECUTABLES].includes(name)) problems.push(`${join(dir, name)} is not one of the prebuilt files`);
  }
  if (problems.length > 0) throw new Error(`prebuilds in ${dir} are not fit to ship:\n  ${problems.join('\n  ')}`);
  return { platform: 'linux-x64', glibcFloor: GLIBC_FLOOR, files };
}
