// `npm run prebuilds`: prebuildify builds the addon (Node-API, one binary for every Node >= 20.19)
// and copies build/artifacts (vc-vmm, vc-agent, vc-holder: the binding.gyp `artifacts` target) beside it in
// prebuilds/linux-x64; this step strips those three (prebuildify strips only the addon), checks all
// four (scripts/package/prebuilt.ts) and writes manifest.json.
//
//   node dist/scripts/package/prebuilds.js [--dir prebuilds/linux-x64]
//   node dist/scripts/package/prebuilds.js --from-build build/Release --dir DIR
//
// --from-build makes the same directory from an existing build (no rebuild), as the packaging
// test does; the checks and the manifest are the same.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADDON_FILE, checkPrebuilds, EXECUTABLES, type PrebuildManifest } from './prebuilt.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function strip(path: string): void {
  const r = spawnSync('strip', ['--strip-all', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`strip ${path} failed: ${r.error?.message ?? r.stderr.trim()}`);
}

/** Strips, checks, and writes manifest.json into a directory holding the four files. */
export function finishPrebuilds(dir: string): PrebuildManifest {
  for (const name of EXECUTABLES) strip(join(dir, name));
  const manifest = checkPrebuilds(dir);
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The prebuilds directory from an existing node-gyp build (build/Release), without rebuilding. */
export function prebuildsFromBuild(buildDir: string, dir: string): PrebuildManifest {
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(buildDir, 'vc_addon.node'), join(dir, ADDON_FILE));
  strip(join(dir, ADDON_FILE));
  for (const name of EXECUTABLES) copyFileSync(join(buildDir, name), join(dir, name));
  return finishPrebuilds(dir);
}

function main(argv: string[]): void {
  let dir = join(root, 'prebuilds', 'linux-x64');
  let fromBuild: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (!v) throw new Error(`${a} needs a value`);
      return resolve(v);
    };
    if (a === '--dir') dir = value();
    else if (a === '--from-build') fromBuild = value();
    else throw new Error(`unknown argument "${a}" (usage: [--from-build BUILD_DIR] [--dir DIR])`);
  }
  const manifest = fromBuild ? prebuildsFromBuild(fromBuild, dir) : finishPrebuilds(dir);
  console.log(`prebuilds: ${dir} fits glibc >= ${manifest.glibcFloor}: ${Object.keys(manifest.files).join(', ')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(`prebuilds: ${(err as Error).message}`);
    process.exit(1);
  }
}
