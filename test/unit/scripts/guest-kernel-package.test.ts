// scripts/guest-kernel-package.ts on the real thing: Debian's current cloud kernel .deb, fetched
// with apt-get download (twice: once by the script's default path, once by this test for the CLI's
// --deb), packed, installed with npm into an app, resolved by resolveKernel and turned into the
// same initrd as the apt cache's extraction gives.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveDependency, run } from '../../../src/guest/apt.js';
import { buildInitrd } from '../../../src/guest/initrd.js';
import { KERNEL_PACKAGE_NAME, kernelPackageVersion, verifyKernelPackage } from '../../../src/guest/kernel-package.js';
import { KERNEL_FLAVORS, resolveKernel, type Kernel } from '../../../src/guest/kernel.js';
import { GUEST_MODULES, resolveModules } from '../../../src/guest/modules.js';
import { buildKernelPackage, type BuiltKernelPackage } from '../../../scripts/guest-kernel-package.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-kpkg-build-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const script = join(dirname(fileURLToPath(import.meta.url)), '../../../scripts/guest-kernel-package.js');

let built: BuiltKernelPackage;
let fromApt: Kernel;

// The second build (the CLI with --deb, on a .deb this test downloads itself) needs nothing from
// the first until the comparison: it starts now and runs in its own process beside the first
// test's build (each build is an apt-cache look-up, a download, a dpkg-deb -x and an npm pack,
// partly waiting), so the file takes ≈ 1/4 less time.
const againOut = join(scratch, 'again');
const againBuild = (async () => {
  const debDir = join(scratch, 'deb');
  mkdirSync(debDir);
  const pkg = await resolveDependency(KERNEL_FLAVORS.cloud.metapackage, KERNEL_FLAVORS.cloud.pattern);
  await run('apt-get', ['download', pkg], { cwd: debDir });
  const deb = join(debDir, readdirSync(debDir).find((f) => f.endsWith('.deb'))!);
  return run(process.execPath, [script, '--deb', deb, '--out', againOut, '--pack-destination', join(scratch, 'tgz-again')]);
})();
againBuild.catch(() => {}); // its failure is reported by the test that awaits it

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

test('builds the package from the current cloud kernel .deb (apt-get download)', async () => {
  const started = Date.now();
  built = await buildKernelPackage({ out: join(scratch, 'pkg'), packDestination: join(scratch, 'tgz') });
  fromApt = await resolveKernel({ packageFrom: false });
  const m = built.manifest;
  console.log(`  built in ${Date.now() - started} ms: ${built.tarball!.path} ${built.tarball!.size} bytes (${built.tarball!.unpackedSize} unpacked), ${m.modules.length} modules`);
  assert.is(m.release, fromApt.release, 'the kernel apt-cache depends names, as the cache has it');
  assert.is(built.version, kernelPackageVersion(m.debian.version));
  assert.is(m.debian.source, 'linux');
  assert.ok(readFileSync(join(built.dir, m.kernel)).equals(readFileSync(fromApt.kernelPath)), 'the bzImage, unchanged');

  const pkg = JSON.parse(readFileSync(join(built.dir, 'package.json'), 'utf8'));
  assert.equal(
    { name: pkg.name, version: pkg.version, license: pkg.license, os: pkg.os, cpu: pkg.cpu },
    { name: KERNEL_PACKAGE_NAME, version: built.version, license: 'GPL-2.0-only', os: ['linux'], cpu: ['x64'] },
  );
  // Only the initrd's modules, in the order the modules resolver gives on the full tree.
  const plan = await resolveModules(fromApt.modulesDir, GUEST_MODULES, { release: fromApt.release });
  assert.equal(m.modules, plan.load.map((x) => x.relPath));
  const koFiles = listFiles(built.dir).filter((f) => f.endsWith('.ko'));
  assert.equal(koFiles, m.modules.map((r) => `${m.modulesDir}/${r}`).sort(), 'no other .ko files');
  // Every file but package.json and the manifest is listed with its hash; nothing else is there.
  assert.equal(listFiles(built.dir), [...Object.keys(m.files), 'manifest.json', 'package.json'].sort());
  assert.match(readFileSync(join(built.dir, 'COPYRIGHT'), 'utf8'), 'License: GPL-2');
  const readme = readFileSync(join(built.dir, 'README.md'), 'utf8');
  assert.match(readme, `https://snapshot.debian.org/package/linux/${encodeURIComponent(m.debian.sourceVersion)}/`);
  // The tarball holds exactly the directory.
  const entries = execFileSync('tar', ['-tzf', built.tarball!.path], { encoding: 'utf8' }).trim().split('\n').map((e) => e.replace(/^package\//, ''));
  assert.equal(entries.sort(), listFiles(built.dir));
  await verifyKernelPackage(built.dir);
});

test('same .deb, same tarball: the CLI with --deb rebuilds it byte for byte', async () => {
  const stdout = await againBuild;
  const out = againOut;
  const tarball = stdout.trim();
  assert.is(tarball, join(scratch, 'tgz-again', `virtcontainers-guest-kernel-linux-x64-${built.version}.tgz`), 'prints the tarball');
  assert.ok(readFileSync(tarball).equals(readFileSync(built.tarball!.path)), 'identical bytes');
  assert.equal(listFiles(out), listFiles(built.dir));
  assert.is(statSync(join(out, built.manifest.kernel)).mtime.toISOString(), '1985-10-26T08:15:00.000Z', 'fixed mtimes in the directory too');
});

test('virtcontainers pins this very package: optionalDependencies and the lock file', () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../../..');
  const pinned = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).optionalDependencies?.[KERNEL_PACKAGE_NAME];
  const locked = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')).packages[`node_modules/${KERNEL_PACKAGE_NAME}`];
  const redo = `Debian's current cloud kernel packs as ${built.version} (${built.tarball!.integrity}): run \`npm run guest-kernel-package\` and update package.json's optionalDependencies and the lock file's entry (README: Guest kernel package)`;
  assert.is(pinned, built.version, redo);
  assert.is(locked?.version, built.version, redo);
  assert.is(locked?.integrity, built.tarball!.integrity, redo);
});

test('installed with npm into an app: resolveKernel uses it and the initrd equals the apt one', async () => {
  const app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{"name":"app","private":true}');
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', built.tarball!.path], { cwd: app });
  const messages: string[] = [];
  const kernel = await resolveKernel({ packageFrom: join(app, 'index.js'), onProgress: (msg) => messages.push(msg) });
  const installed = join(app, 'node_modules', KERNEL_PACKAGE_NAME);
  assert.is(kernel.kernelPath, join(installed, built.manifest.kernel));
  assert.is(kernel.release, fromApt.release);
  assert.match(messages.join(' | '), `from the package ${KERNEL_PACKAGE_NAME}`);

  const agentPath = join(scratch, 'agent');
  writeFileSync(agentPath, '#!/bin/sh\necho pretend agent\n', { mode: 0o755 });
  const fromPackage = await buildInitrd({ agentPath, kernel, cacheDir: join(scratch, 'initrd-pkg') });
  const fromCache = await buildInitrd({ agentPath, kernel: fromApt, cacheDir: join(scratch, 'initrd-apt') });
  assert.equal(fromPackage.modules, fromCache.modules, 'same modules in the same order');
  assert.is(fromPackage.digest, fromCache.digest, 'and the same initrd, byte for byte');
  assert.equal(fromPackage.modules, built.manifest.modules.map((r) => `/${built.manifest.modulesDir}/${r}`), 'the manifest\'s load order');
});

test.run();
