// The guest kernel npm package, runtime side: version mapping, manifest checks, finding the
// package the way Node resolves it, and resolveKernel's order (given paths, package, cache, apt).
// The package here is a small fake one with real files and a real manifest; the package built
// from the real .deb is tested in test/unit/scripts/guest-kernel-package.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compareDebVersions } from '../../../src/guest/apt.js';
import { cacheDir } from '../../../src/guest/cache.js';
import { GuestError } from '../../../src/guest/errors.js';
import {
  KERNEL_PACKAGE_NAME, checkManifest, findKernelPackage, kernelPackageVersion, verifyKernelPackage,
} from '../../../src/guest/kernel-package.js';
import { resolveKernel } from '../../../src/guest/kernel.js';
import { expectCode, withoutTools } from '../../helpers/errors.js';

const expectGuestCode = (promise: Promise<unknown>, code: string, message?: string | RegExp) => expectCode(promise, GuestError, code, message);
const scratch = mkdtempSync(join(tmpdir(), 'vc-kpkg-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

const RELEASE = '6.1.0-99-cloud-amd64';

/** A package dir with real files and a manifest that matches them; returns its path. */
function fakePackage(dir: string): string {
  const files: Record<string, string> = {
    [`boot/vmlinuz-${RELEASE}`]: 'not really a bzImage, but bytes the manifest pins',
    [`lib/modules/${RELEASE}/kernel/drivers/virtio/virtio.ko`]: 'module one',
    [`lib/modules/${RELEASE}/kernel/drivers/virtio/virtio_ring.ko`]: 'module two',
    [`lib/modules/${RELEASE}/modules.builtin`]: '',
    COPYRIGHT: 'GPL-2\n',
  };
  const listed: Record<string, { size: number; sha256: string }> = {};
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
    listed[rel] = { size: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') };
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifestFor(listed)));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: KERNEL_PACKAGE_NAME, version: '6.1.999001' }));
  return dir;
}

function manifestFor(files: Record<string, { size: number; sha256: string }>) {
  return {
    format: 1,
    release: RELEASE,
    debian: { package: `linux-image-${RELEASE}`, version: '6.1.999-1', source: 'linux', sourceVersion: '6.1.999-1' },
    kernel: `boot/vmlinuz-${RELEASE}`,
    modulesDir: `lib/modules/${RELEASE}`,
    modules: ['kernel/drivers/virtio/virtio_ring.ko', 'kernel/drivers/virtio/virtio.ko'],
    builtin: [],
    files,
  };
}

/** An app dir whose node_modules holds the fake package, as npm would install it. */
function appWithPackage(name: string): { app: string; pkg: string } {
  const app = join(scratch, name);
  const pkg = fakePackage(join(app, 'node_modules', KERNEL_PACKAGE_NAME));
  writeFileSync(join(app, 'package.json'), '{"name":"app","private":true}');
  return { app, pkg };
}

// ---- version mapping ----

test('kernelPackageVersion: X.Y.Z-N → X.Y.(Z*1000+N)', () => {
  assert.is(kernelPackageVersion('6.1.192-3'), '6.1.192003');
  assert.is(kernelPackageVersion('6.1.193-1'), '6.1.193001');
  assert.is(kernelPackageVersion('6.12.0-0'), '6.12.0');
  assert.is(kernelPackageVersion('6.1.192-999'), '6.1.192999');
});

test('kernelPackageVersion orders like dpkg', () => {
  const debian = ['6.1.192-3', '6.1.9-1', '6.1.192-10', '6.12.1-1', '6.1.193-1', '6.1.192-2', '7.0.0-1', '6.2.0-1', '6.1.1000-1'];
  const semverCompare = (a: string, b: string) => {
    const [x, y] = [a, b].map((v) => v.split('.').map(Number)) as [number[], number[]];
    return Math.sign(x[0]! - y[0]!) || Math.sign(x[1]! - y[1]!) || Math.sign(x[2]! - y[2]!);
  };
  const byDpkg = [...debian].sort(compareDebVersions);
  const bySemver = [...debian].sort((a, b) => semverCompare(kernelPackageVersion(a), kernelPackageVersion(b)));
  assert.equal(bySemver, byDpkg);
  for (const v of debian) assert.match(kernelPackageVersion(v), /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/, 'plain semver, no leading zeros');
});

test('kernelPackageVersion refuses versions it cannot map in order, naming the value', () => {
  for (const v of ['1:6.1.192-3', '6.1.192-1~bpo12+1', '6.1.192-1+deb12u1', '6.1-1', '6.1.192', 'x']) {
    assert.throws(() => kernelPackageVersion(v), (err: GuestError) => err.code === 'INVALID_OPTION' && err.message.startsWith(`Debian version: "${v}"`), v);
  }
  assert.throws(() => kernelPackageVersion('6.1.192-1000'), /revision 1000/);
});

// ---- manifest ----

test('checkManifest names the field and the bad value', () => {
  const good = manifestFor({ [`boot/vmlinuz-${RELEASE}`]: { size: 1, sha256: 'a'.repeat(64) }, [`lib/modules/${RELEASE}/kernel/drivers/virtio/virtio_ring.ko`]: { size: 1, sha256: 'b'.repeat(64) }, [`lib/modules/${RELEASE}/kernel/drivers/virtio/virtio.ko`]: { size: 1, sha256: 'c'.repeat(64) } });
  assert.is(checkManifest(good, 'm.json').release, RELEASE);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ format: 2 }, /m\.json: format: 2 is not 1/],
    [{ release: '../x' }, /release: "\.\.\/x" is not a kernel release name/],
    [{ kernel: '/boot/vmlinuz' }, /kernel: "\/boot\/vmlinuz" is not a plain relative path/],
    [{ kernel: 'boot/other' }, /kernel: "boot\/other" is not listed in files/],
    [{ modulesDir: 'lib/../..' }, /modulesDir: "lib\/\.\.\/\.\." is not a plain relative path/],
    [{ modules: ['kernel/missing.ko'] }, /modules\[0\]: "lib\/modules\/.*\/kernel\/missing\.ko" is not listed in files/],
    [{ modules: 'virtio' }, /modules: "virtio" is not a list of names/],
    [{ debian: { package: 'p', version: '', source: 'linux', sourceVersion: '1' } }, /debian\.version: "" is not a non-empty string/],
    [{ files: { '../etc/passwd': { size: 1, sha256: 'a'.repeat(64) } } }, /files\["\.\.\/etc\/passwd"\]: .* is not a plain relative path/],
    [{ files: { ...good.files, [`boot/vmlinuz-${RELEASE}`]: { size: -1, sha256: 'a'.repeat(64) } } }, /is not \{size, sha256\}/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => checkManifest({ ...good, ...change }, 'm.json'), (err: GuestError) => err.code === 'KERNEL_PACKAGE_INVALID' && message.test(err.message), String(message));
  }
  assert.throws(() => checkManifest([], 'm.json'), /\(root\): \[\] is not an object/);
});

test('verifyKernelPackage: a complete package passes; each kind of damage is named', async () => {
  const dir = fakePackage(join(scratch, 'verify'));
  const manifest = await verifyKernelPackage(dir);
  assert.is(manifest.release, RELEASE);
  const ko = join(dir, `lib/modules/${RELEASE}/kernel/drivers/virtio/virtio.ko`);

  // Same size, other bytes: only the sha256 shows it (and an earlier pass is no excuse).
  writeFileSync(ko, 'module One');
  await expectGuestCode(verifyKernelPackage(dir), 'KERNEL_PACKAGE_INVALID', new RegExp(`${ko} has sha256 [0-9a-f]{64}, manifest.json says .*corrupt`));
  truncateSync(ko, 3);
  await expectGuestCode(verifyKernelPackage(dir), 'KERNEL_PACKAGE_INVALID', `${ko} has 3 bytes, manifest.json says 10; the package is truncated`);
  rmSync(ko);
  await expectGuestCode(verifyKernelPackage(dir), 'KERNEL_PACKAGE_INVALID', `${ko} is missing (listed in manifest.json)`);

  writeFileSync(join(dir, 'manifest.json'), '{"format": 1, "rele');
  await expectGuestCode(verifyKernelPackage(dir), 'KERNEL_PACKAGE_INVALID', `${join(dir, 'manifest.json')} is not valid JSON`);
  rmSync(join(dir, 'manifest.json'));
  const err = await expectGuestCode(verifyKernelPackage(dir), 'KERNEL_PACKAGE_INVALID', `${join(dir, 'manifest.json')} is missing`);
  assert.match(err.message, '--kernel', 'says how to get going anyway');
});

// ---- finding the package ----

test('findKernelPackage: found from a module installed beside it in node_modules, or not at all', () => {
  const { app, pkg } = appWithPackage('app-find');
  // virtcontainers' own code, installed as app/node_modules/virtcontainers, resolves its sibling.
  const vcGuest = join(app, 'node_modules/virtcontainers/dist/src/guest');
  mkdirSync(vcGuest, { recursive: true });
  assert.is(findKernelPackage(pathToFileURL(join(vcGuest, 'kernel-package.js')).href), pkg);
  assert.is(findKernelPackage(join(app, 'index.js')), pkg, 'a plain path works too');
  const bare = join(scratch, 'app-without');
  mkdirSync(bare, { recursive: true });
  assert.is(findKernelPackage(join(bare, 'index.js')), undefined);
});

test('findKernelPackage default: virtcontainers\' own module resolves the package installed beside it', async () => {
  const { app, pkg } = appWithPackage('app-default');
  // A copy of the compiled module (it imports only guest/errors.js, which imports errors.js) where npm would put virtcontainers.
  const here = dirname(fileURLToPath(import.meta.url));
  const compiledGuest = join(here, '../../../src/guest');
  const vcGuest = join(app, 'node_modules/virtcontainers/dist/src/guest');
  mkdirSync(vcGuest, { recursive: true });
  for (const f of ['kernel-package.js', 'errors.js']) cpSync(join(compiledGuest, f), join(vcGuest, f));
  cpSync(join(compiledGuest, '../errors.js'), join(vcGuest, '../errors.js'));
  writeFileSync(join(app, 'node_modules/virtcontainers/package.json'), '{"name":"virtcontainers","type":"module"}');
  const copy = (await import(pathToFileURL(join(vcGuest, 'kernel-package.js')).href)) as typeof import('../../../src/guest/kernel-package.js');
  assert.is(copy.findKernelPackage(), pkg);
});

// ---- resolveKernel's order ----

test('resolveKernel: the package first, even with a kernel in the cache; no apt needed', async () => {
  const { app, pkg } = appWithPackage('app-resolve');
  const cached = await withoutTools(scratch, () => resolveKernel({ packageFrom: false }));
  assert.ok(cached.kernelPath.startsWith(cacheDir()), 'the cache holds a kernel too');
  const messages: string[] = [];
  const k = await withoutTools(scratch, () => resolveKernel({ packageFrom: join(app, 'index.js'), onProgress: (m) => messages.push(m) }));
  assert.equal(k, { kernelPath: join(pkg, `boot/vmlinuz-${RELEASE}`), modulesDir: join(pkg, `lib/modules/${RELEASE}`), release: RELEASE });
  assert.match(messages.join(' | '), `from the package ${KERNEL_PACKAGE_NAME} in ${pkg}`);
});

test('resolveKernel: given paths override an installed package', async () => {
  const { app, pkg } = appWithPackage('app-override');
  const modulesDir = join(pkg, `lib/modules/${RELEASE}`);
  const other = join(scratch, 'other-vmlinuz');
  writeFileSync(other, 'some other kernel');
  const k = await resolveKernel({ kernelPath: other, modulesDir, packageFrom: join(app, 'index.js') });
  assert.is(k.kernelPath, other);
});

test('resolveKernel: a damaged package is an error naming the file, not a silent fallback', async () => {
  const { app, pkg } = appWithPackage('app-damaged');
  const image = join(pkg, `boot/vmlinuz-${RELEASE}`);
  truncateSync(image, 5);
  await expectGuestCode(resolveKernel({ packageFrom: join(app, 'index.js') }), 'KERNEL_PACKAGE_INVALID', `${image} has 5 bytes`);
});

test('resolveKernel: the generic flavor never uses the (cloud) package', async () => {
  const { app, pkg } = appWithPackage('app-generic');
  const k = await resolveKernel({ flavor: 'generic', packageFrom: join(app, 'index.js') });
  assert.not.ok(k.kernelPath.startsWith(pkg));
  assert.match(k.release, /^\d+\.\d+\.\d+-\d+-amd64$/);
});

test('resolveKernel: no package → the cache; no cache either → apt', async () => {
  const bare = join(scratch, 'app-none', 'index.js');
  const messages: string[] = [];
  const k = await withoutTools(scratch, () => resolveKernel({ packageFrom: bare, onProgress: (m) => messages.push(m) }));
  assert.ok(k.kernelPath.startsWith(join(cacheDir(), 'kernels')), k.kernelPath);
  assert.match(messages.join(' | '), 'using cached');
  // With an empty cache it goes to apt, which (with no apt-get on PATH) fails with apt's advice.
  const err = await withoutTools(scratch, () => expectGuestCode(resolveKernel({ packageFrom: bare, cacheDir: join(scratch, 'no-cache') }), 'KERNEL_UNAVAILABLE'));
  assert.match(err.message, 'apt-get');
});

test.run();
