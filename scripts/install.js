#!/usr/bin/env node
// npm's install step. The package carries prebuilt binaries (prebuilds/linux-x64: the addon,
// vc-vmm, vc-agent, vc-holder; scripts/package/prebuilds.ts made and checked them): use them when they fit
// this host, so no compiler is needed; otherwise build from source with node-gyp and say why.
// A checkout has no prebuilds and always builds from source (with the test-only targets).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareVersions } from './glibc-floor.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'prebuilds', `${process.platform}-${process.arch}`);

/** Why the prebuilt binaries cannot be used here, or null when they can. */
function whyNotPrebuilt() {
  if (process.env.VIRTCONTAINERS_BUILD_FROM_SOURCE) return 'VIRTCONTAINERS_BUILD_FROM_SOURCE is set';
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) return `no prebuilt binaries for ${process.platform}-${process.arch} (${manifestPath} is missing)`;
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    return `${manifestPath} is unreadable (${err.message})`;
  }
  const missing = Object.keys(manifest.files ?? {}).filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0 || !manifest.files) return `${dir} lacks ${missing.join(', ') || 'its file list'}`;
  const glibc = process.report?.getReport().header.glibcVersionRuntime;
  if (!glibc) return 'this host\'s C library is not glibc (the prebuilt addon links against glibc)';
  if (compareVersions(glibc, manifest.glibcFloor) < 0) return `this host has glibc ${glibc}, the prebuilt addon needs ${manifest.glibcFloor} or newer`;
  return null;
}

const why = whyNotPrebuilt();
if (why === null) {
  console.log(`virtcontainers: using the prebuilt binaries in ${dir}`);
  process.exit(0);
}
console.log(`virtcontainers: ${why}; building from source with node-gyp (needs g++, make and python3)`);
// npm hands its bundled node-gyp to install scripts; outside npm, node-gyp must be on PATH.
// node-gyp runs make one file at a time unless told (JOBS): ≈ 190 C++ files here. A few at once,
// bounded since each compiler takes a few hundred MiB.
const env = { ...process.env, JOBS: process.env.JOBS ?? String(Math.min(availableParallelism(), 4)) };
const gyp = process.env.npm_config_node_gyp;
const r = gyp ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit', env })
  : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit', env });
if (r.error) console.error(`virtcontainers: cannot run node-gyp: ${r.error.message}`);
process.exit(r.status ?? 1);
