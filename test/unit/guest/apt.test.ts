import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandFailed, compareDebVersions, debDirName, listExtracted, resolveDependency, run } from '../../../src/guest/apt.js';

test('compareDebVersions follows dpkg ordering', () => {
  const ascending = [
    '1.0~rc1', '1.0', '1.0-1', '1.0-2', '1.0-10', '1.0a', '1.0+b1', '1.1', '6.1.176-1', '6.1.192-2', '6.1.192-10', '1:0.1',
  ];
  for (let i = 0; i < ascending.length; i++) {
    for (let j = 0; j < ascending.length; j++) {
      const want = Math.sign(i - j);
      assert.is(compareDebVersions(ascending[i]!, ascending[j]!), want, `${ascending[i]} vs ${ascending[j]}`);
    }
  }
  assert.is(compareDebVersions('1.01', '1.1'), 0, 'leading zeros do not count');
  assert.is(compareDebVersions('1:1.35.0-4+deb12u1+b1', '1:1.35.0-4+deb12u1'), 1);
});

test('listExtracted: newest first, temp dirs and other packages ignored, epoch decoded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vc-apt-'));
  try {
    for (const n of ['linux-image-6.1.0-9-cloud-amd64_6.1.27-1', 'linux-image-6.1.0-56-cloud-amd64_6.1.192-2',
      '.tmp-linux-image-6.1.0-99-cloud-amd64-abc', 'busybox-static_1%3a1.35.0-4', 'linux-image-6.1.0-56-amd64_6.1.192-2']) {
      mkdirSync(join(dir, n));
    }
    const kernels = await listExtracted(dir, /^linux-image-\d.*-cloud-amd64$/);
    assert.equal(kernels.map((e) => e.version), ['6.1.192-2', '6.1.27-1']);
    assert.equal(kernels[0]!.dir, join(dir, 'linux-image-6.1.0-56-cloud-amd64_6.1.192-2'));
    const busybox = await listExtracted(dir, /^busybox-static$/);
    assert.equal(busybox.map((e) => e.version), ['1:1.35.0-4']);
    assert.is(debDirName('busybox-static', '1:1.35.0-4'), 'busybox-static_1%3a1.35.0-4');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listExtracted of a missing directory is empty', async () => {
  assert.equal(await listExtracted('/nonexistent/vc-kernels', /./), []);
});

test('run: missing program and failing program are CommandFailed with the reason', async () => {
  try {
    await run('vc-no-such-program', []);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandFailed);
    assert.ok((err as CommandFailed).missing);
  }
  try {
    // The texts come from the environment so that they are not part of the command line itself.
    process.env.VC_TEST_W = 'W: just a warning';
    process.env.VC_TEST_E = 'E: real problem';
    await run('sh', ['-c', 'echo "$VC_TEST_W" >&2; echo "$VC_TEST_E" >&2; exit 3']);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandFailed);
    assert.not.ok((err as CommandFailed).missing);
    assert.match((err as Error).message, 'E: real problem');
    assert.not.match((err as Error).message, 'just a warning');
  }
});

test('run honours an AbortSignal', async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const started = Date.now();
  try {
    await run('sleep', ['10'], { signal: controller.signal });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandFailed);
    assert.ok((err as CommandFailed).aborted);
  }
  assert.ok(Date.now() - started < 5000);
});

test('resolveDependency finds the cloud kernel behind the metapackage (real apt-cache)', async () => {
  const pkg = await resolveDependency('linux-image-cloud-amd64', /^linux-image-\d.*-cloud-amd64$/);
  assert.match(pkg, /^linux-image-\d+\.\d+\.\d+-\d+-cloud-amd64$/);
});

test('resolveDependency of an unknown package is CommandFailed', async () => {
  try {
    await resolveDependency('vc-no-such-package-xyz', /./);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, CommandFailed);
  }
});

test.run();
