// The packaging checks (scripts/package/prebuilt.ts, src/guest/elf.ts elfDynamicNeeds) on real
// ELF files, compared with objdump where it exists, and the install step's choice
// (scripts/install.js) between the prebuilt binaries and a source build, on real directories.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { elfDynamicNeeds } from '../../../src/guest/elf.js';
import { addonProblems, GLIBC_FLOOR } from '../../../scripts/package/prebuilt.js';
import { compareVersions } from '../../../scripts/glibc-floor.js';
import { tempDir } from '../../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const dir = tempDir('vc-pkg');
test.after(() => dir.remove());

test('elfDynamicNeeds reads DT_NEEDED and the needed symbol versions as objdump does', () => {
  const file = '/usr/bin/ls';
  const needs = elfDynamicNeeds(readFileSync(file), file);
  assert.ok(needs.libraries.includes('libc.so.6'), JSON.stringify(needs));
  assert.ok(needs.versions.some((v) => /^GLIBC_2\.\d+$/.test(v)), JSON.stringify(needs));
  const objdump = spawnSync('objdump', ['-p', file], { encoding: 'utf8' });
  if (objdump.status !== 0) {
    console.log('  (no objdump here: the independent comparison is left out)');
    return;
  }
  const libs = [...objdump.stdout.matchAll(/^\s+NEEDED\s+(\S+)$/gm)].map((m) => m[1]);
  const versions = [...new Set([...objdump.stdout.matchAll(/^\s+0x[0-9a-f]+ 0x[0-9a-f]+ \d+ (\S+)$/gm)].map((m) => m[1]!))].sort();
  assert.equal(needs.libraries, libs);
  assert.equal(needs.versions, versions);
});

test('elfDynamicNeeds: a static executable needs nothing; a truncated file is ELF_INVALID', () => {
  const busybox = '/bin/busybox';
  assert.equal(elfDynamicNeeds(readFileSync(busybox), busybox), { libraries: [], versions: [] });
  const cut = readFileSync('/usr/bin/ls').subarray(0, 200);
  assert.throws(() => elfDynamicNeeds(cut, 'cut-ls'), (err: Error & { code?: string }) => err.code === 'ELF_INVALID' && /cut-ls/.test(err.message));
});

test('addonProblems: glibc up to the floor and old libgcc_s are fine; newer glibc, libstdc++ or other libraries are named', () => {
  assert.equal(addonProblems({ libraries: ['libc.so.6', 'libm.so.6', 'libgcc_s.so.1'], versions: ['GCC_3.0', 'GLIBC_2.2.5', `GLIBC_${GLIBC_FLOOR}`] }), []);
  assert.equal(addonProblems({ libraries: ['libgcc_s.so.1'], versions: ['GCC_12.0'] }), ['needs GCC_12.0, newer than libgcc_s 4.9']);
  assert.equal(addonProblems({ libraries: ['libc.so.6'], versions: ['GLIBC_2.99'] }), [`needs GLIBC_2.99, newer than the stated floor glibc ${GLIBC_FLOOR}`]);
  const p = addonProblems({ libraries: ['libstdc++.so.6'], versions: ['GLIBCXX_3.4.30'] });
  assert.is(p.length, 2);
  assert.match(p[0]!, /needs libstdc\+\+\.so\.6/);
  assert.match(p[1]!, /symbol version GLIBCXX_3\.4\.30 \(only glibc's/);
});

test('the addon this checkout loads fits: only allowed libraries, glibc no newer than the floor', () => {
  // build/Release, or prebuilds/ after `npm run prebuilds` (prebuildify moves the build there).
  const addon = createRequire(import.meta.url)('node-gyp-build').path(root) as string;
  const needs = elfDynamicNeeds(readFileSync(addon), addon);
  console.log(`  ${addon}: ${needs.libraries.join(', ')}; ${needs.versions.join(', ')}`);
  assert.equal(addonProblems(needs), []);
});

test('compareVersions is numeric per part', () => {
  assert.ok(compareVersions('2.34', '2.4') > 0);
  assert.ok(compareVersions('2.31', '2.34') < 0);
  assert.is(compareVersions('2.34', '2.34.0'), 0);
});

/** A package directory with scripts/install.js, a prebuilds dir as given, and a stand-in node-gyp that records its call. */
function installIn(name: string, manifest: object | null, files: string[]) {
  const pkg = join(dir.path, name);
  mkdirSync(join(pkg, 'scripts'), { recursive: true });
  for (const f of ['install.js', 'glibc-floor.js']) copyFileSync(join(root, 'scripts', f), join(pkg, 'scripts', f));
  const pre = join(pkg, 'prebuilds', 'linux-x64');
  mkdirSync(pre, { recursive: true });
  if (manifest) writeFileSync(join(pre, 'manifest.json'), JSON.stringify(manifest));
  for (const f of files) writeFileSync(join(pre, f), 'x');
  writeFileSync(join(pkg, 'package.json'), '{"type": "module"}');
  const gyp = join(pkg, 'fake-node-gyp.cjs');
  writeFileSync(gyp, `require('fs').writeFileSync(${JSON.stringify(join(pkg, 'gyp-called'))}, process.argv.slice(2).join(' '));\n`);
  chmodSync(gyp, 0o755);
  const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'install.js')], { encoding: 'utf8', env: { ...process.env, npm_config_node_gyp: gyp, VIRTCONTAINERS_BUILD_FROM_SOURCE: '' } });
  let gypArgs: string | null = null;
  try { gypArgs = readFileSync(join(pkg, 'gyp-called'), 'utf8'); } catch { /* not called */ }
  return { status: r.status, out: r.stdout + r.stderr, gypArgs };
}

const files = { 'virtcontainers.glibc.node': 'a', 'vc-vmm': 'b', 'vc-agent': 'c', 'vc-holder': 'd' };

test('install uses fitting prebuilds without compiling', () => {
  const r = installIn('fits', { platform: 'linux-x64', glibcFloor: GLIBC_FLOOR, files }, Object.keys(files));
  assert.is(r.status, 0, r.out);
  assert.match(r.out, /using the prebuilt binaries/);
  assert.is(r.gypArgs, null, 'node-gyp was not run');
});

test('install builds from source, saying why, when the prebuilds do not fit', () => {
  const cases: [string, object | null, string[], RegExp][] = [
    ['none', null, [], /no prebuilt binaries for linux-x64 \(.*manifest\.json is missing\)/],
    ['newer-glibc', { platform: 'linux-x64', glibcFloor: '99.0', files }, Object.keys(files), /the prebuilt addon needs 99\.0 or newer/],
    ['missing-file', { platform: 'linux-x64', glibcFloor: GLIBC_FLOOR, files }, ['virtcontainers.glibc.node'], /lacks vc-vmm, vc-agent, vc-holder/],
  ];
  for (const [name, manifest, present, why] of cases) {
    const r = installIn(name, manifest, present);
    assert.is(r.status, 0, `${name}: ${r.out}`);
    assert.match(r.out, why, name);
    assert.match(r.out, /building from source with node-gyp \(needs g\+\+, make and python3\)/, name);
    assert.is(r.gypArgs, 'rebuild', `${name}: node-gyp rebuild ran`);
  }
});

test.run();
