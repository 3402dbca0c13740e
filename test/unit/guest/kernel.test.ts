import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { GuestError } from '../../../src/guest/errors.js';
import { VcError } from '../../../src/errors.js';
import { bzImageRelease, resolveKernel, type Kernel } from '../../../src/guest/kernel.js';
import { expectCode, withoutTools } from '../../helpers/errors.js';

const expectGuestCode = (promise: Promise<unknown>, code: string, message?: string | RegExp) => expectCode(promise, GuestError, code, message);

const scratch = mkdtempSync(join(tmpdir(), 'vc-kernel-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));



let kernel: Kernel;
// These tests are about the apt path: the npm kernel package (test/unit/guest/kernel-package.test.ts)
// is skipped even where it is installed.
const noPackage = { packageFrom: false } as const;

test('default: Debian cloud kernel from the cache (fetched on first use)', async () => {
  const messages: string[] = [];
  const started = Date.now();
  kernel = await resolveKernel({ ...noPackage, onProgress: (m) => messages.push(m) });
  console.log(`  resolveKernel: ${Date.now() - started} ms; ${messages.join(' | ')}`);
  assert.match(kernel.release, /^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
  assert.ok(statSync(kernel.kernelPath).isFile());
  assert.is(basename(kernel.kernelPath), `vmlinuz-${kernel.release}`);
  assert.is(basename(kernel.modulesDir), kernel.release);
  assert.ok(existsSync(join(kernel.modulesDir, 'modules.builtin')));
  assert.is(bzImageRelease(readFileSync(kernel.kernelPath)), kernel.release, 'bzImage header agrees');
});

test('cached kernel is reused without running apt at all (offline)', async () => {
  const again = await withoutTools(scratch, () => resolveKernel(noPackage));
  assert.equal(again, kernel);
});

test('cold fetch into an empty cache: download, atomic unpack, no temp dirs left', async () => {
  const cache = join(scratch, 'cold');
  const messages: string[] = [];
  const started = Date.now();
  const k = await resolveKernel({ ...noPackage, cacheDir: cache, onProgress: (m) => messages.push(m) });
  console.log(`  cold fetch: ${Date.now() - started} ms`);
  assert.ok(messages.some((m) => m.includes('apt-get download')), messages.join(' | '));
  assert.ok(k.kernelPath.startsWith(join(cache, 'kernels')));
  assert.is(k.release, kernel.release);
  assert.equal(readdirSync(join(cache, 'kernels')), [basename(join(k.modulesDir, '../../..'))]);
  assert.ok(readFileSync(k.kernelPath).equals(readFileSync(kernel.kernelPath)));
});

test('no cached kernel and no apt: KERNEL_UNAVAILABLE with advice, nothing left behind', async () => {
  const cache = join(scratch, 'offline');
  const err = await withoutTools(scratch, () => expectGuestCode(resolveKernel({ ...noPackage, cacheDir: cache }), 'KERNEL_UNAVAILABLE'));
  assert.match(err.message, 'apt-get update');
  assert.match(err.message, '--kernel');
  assert.match(err.message, 'modulesDir');
  assert.ok(!existsSync(join(cache, 'kernels')) || readdirSync(join(cache, 'kernels')).length === 0);
});

test('an aborted signal stops before any work', async () => {
  await expectCode(resolveKernel({ signal: AbortSignal.abort() }), VcError, 'ABORTED');
});

test('user-given kernel + modules: validated, release from the bzImage header', async () => {
  const k = await resolveKernel({ kernelPath: kernel.kernelPath, modulesDir: kernel.modulesDir });
  assert.equal(k, kernel);
  // Not a bzImage: the release falls back to the modules directory's name.
  const image = join(scratch, 'Image');
  writeFileSync(image, 'not a bzImage');
  const k2 = await resolveKernel({ kernelPath: image, modulesDir: kernel.modulesDir });
  assert.is(k2.release, kernel.release);
});

test('user-given paths: errors name the option and the value', async () => {
  const noKo = join(scratch, 'empty-modules');
  mkdirSync(noKo, { recursive: true });
  writeFileSync(join(noKo, 'modules.builtin'), '');
  await expectGuestCode(resolveKernel({ kernelPath: '/x/vmlinuz', modulesDir: kernel.modulesDir }), 'INVALID_OPTION', 'kernel: /x/vmlinuz does not exist');
  await expectGuestCode(resolveKernel({ kernelPath: scratch, modulesDir: kernel.modulesDir }), 'INVALID_OPTION', `kernel: ${scratch} is not a regular file`);
  await expectGuestCode(resolveKernel({ kernelPath: kernel.kernelPath, modulesDir: '/x/modules' }), 'INVALID_OPTION', 'modules: /x/modules does not exist');
  await expectGuestCode(resolveKernel({ kernelPath: kernel.kernelPath, modulesDir: kernel.kernelPath }), 'INVALID_OPTION', 'is not a directory');
  await expectGuestCode(resolveKernel({ kernelPath: kernel.kernelPath, modulesDir: noKo }), 'INVALID_OPTION', `modules: ${noKo} contains no .ko files`);
  await expectGuestCode(resolveKernel({ kernelPath: kernel.kernelPath }), 'INVALID_OPTION', /^modules: is required/);
  await expectGuestCode(resolveKernel({ modulesDir: kernel.modulesDir }), 'INVALID_OPTION', /^kernel: is required/);
});

test('bzImageRelease reads the setup header version string', () => {
  const img = Buffer.alloc(0x1000);
  img.write('HdrS', 0x202, 'latin1');
  img.writeUInt16LE(0x600 - 0x200, 0x20e);
  img.write('6.1.0-99-test (someone@example) #1 SMP\0', 0x600, 'latin1');
  assert.is(bzImageRelease(img), '6.1.0-99-test');
  assert.is(bzImageRelease(Buffer.alloc(0x1000)), undefined, 'no HdrS');
  const noNul = Buffer.from(img);
  noNul.fill(0x41, 0x600);
  assert.is(bzImageRelease(noNul), undefined, 'unterminated string');
  const outside = Buffer.from(img);
  outside.writeUInt16LE(0xfff0, 0x20e);
  assert.is(bzImageRelease(outside), undefined, 'pointer past the end');
  assert.is(bzImageRelease(Buffer.alloc(10)), undefined, 'too short');
});

test.run();
