import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCpio } from '../../../src/guest/cpio.js';
import { GuestError } from '../../../src/guest/errors.js';
import { buildInitrd, initrdDigest, planInitrd, type InitrdInputs } from '../../../src/guest/initrd.js';
import { resolveKernel } from '../../../src/guest/kernel.js';
import { parseModinfo } from '../../../src/guest/modules.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-initrd-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

const inputs: InitrdInputs = {
  agent: Buffer.from('\x7fELF pretend agent'),
  release: '6.1.0-99-test',
  modules: [
    { relPath: 'kernel/drivers/virtio/virtio_ring.ko', data: Buffer.from('ring') },
    { relPath: 'kernel/drivers/virtio/virtio.ko', data: Buffer.from('virtio') },
    { relPath: 'kernel/fs/erofs/erofs.ko', data: Buffer.from('erofs') },
  ],
  busybox: { data: Buffer.from('busybox'), applets: ['bin/sh', 'sbin/init', 'linuxrc', 'usr/bin/[', 'etc/passwd', 'opt/odd/tool'] },
};

test('planInitrd: layout, modes, module list in load order', () => {
  const spec = planInitrd(inputs);
  const by = new Map(spec.entries.map((e) => [e.name, e]));
  for (const d of ['dev', 'proc', 'sys', 'run', 'tmp', 'etc', 'root', 'bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib/modules/6.1.0-99-test',
    'lib/modules/6.1.0-99-test/kernel/drivers/virtio', 'opt/odd']) {
    assert.is(by.get(d)?.type, 'dir', d);
  }
  assert.equal(by.get('init'), { type: 'file', name: 'init', data: inputs.agent, mode: 0o755 });
  assert.equal(by.get('dev/console'), { type: 'chardev', name: 'dev/console', major: 5, minor: 1, mode: 0o600 });
  assert.equal(spec.modules, [
    '/lib/modules/6.1.0-99-test/kernel/drivers/virtio/virtio_ring.ko',
    '/lib/modules/6.1.0-99-test/kernel/drivers/virtio/virtio.ko',
    '/lib/modules/6.1.0-99-test/kernel/fs/erofs/erofs.ko',
  ]);
  const list = by.get('etc/vc-modules');
  assert.ok(list?.type === 'file');
  assert.is(Buffer.from(list.data).toString(), `${spec.modules.join('\n')}\n`);
  assert.equal(by.get('bin/sh'), { type: 'symlink', name: 'bin/sh', target: '/bin/busybox' });
  assert.equal(by.get('usr/bin/['), { type: 'symlink', name: 'usr/bin/[', target: '/bin/busybox' });
  assert.is(by.get('opt/odd/tool')?.type, 'symlink');
  assert.is(by.get('sbin/init'), undefined, 'busybox init is not linked');
  assert.is(by.get('linuxrc'), undefined);
  assert.is(by.get('etc/passwd')?.type, 'file', 'an applet never replaces our own files');
  for (const f of ['etc/passwd', 'etc/group', 'etc/hostname', 'bin/busybox']) assert.is(by.get(f)?.type, 'file', f);
  const passwd = by.get('etc/passwd');
  assert.ok(passwd?.type === 'file' && Buffer.from(passwd.data).toString().startsWith('root:x:0:0:'));
});

test('planInitrd: same inputs give the same entries, bytes and digest; any input change changes the digest', () => {
  const a = planInitrd(inputs);
  const b = planInitrd({ ...inputs, busybox: { ...inputs.busybox, applets: [...inputs.busybox.applets].reverse() } });
  assert.ok(encodeCpio(a.entries).equals(encodeCpio(b.entries)));
  assert.is(initrdDigest(a), initrdDigest(b));
  assert.match(initrdDigest(a), /^[0-9a-f]{64}$/);
  const variants: InitrdInputs[] = [
    { ...inputs, agent: Buffer.from('\x7fELF pretend agenT') },
    { ...inputs, release: '6.1.0-98-test' },
    { ...inputs, modules: [...inputs.modules].reverse() },
    { ...inputs, modules: inputs.modules.map((m, i) => (i === 2 ? { ...m, relPath: 'kernel/fs/erofs2/erofs.ko' } : m)) },
    { ...inputs, busybox: { ...inputs.busybox, data: Buffer.from('busyboX') } },
    { ...inputs, busybox: { ...inputs.busybox, applets: ['bin/sh'] } },
  ];
  const digests = new Set([initrdDigest(a), ...variants.map((v) => initrdDigest(planInitrd(v)))]);
  assert.is(digests.size, variants.length + 1);
});

test('planInitrd: a release that is not a plain name is refused', () => {
  for (const release of ['', '..', 'a/b']) {
    try {
      planInitrd({ ...inputs, release });
      assert.unreachable(release);
    } catch (err) {
      assert.instance(err, GuestError);
      assert.is((err as GuestError).code, 'INVALID_OPTION');
    }
  }
});

test('buildInitrd with the real kernel: cold build, cache hit, identical bytes on rebuild', async () => {
  const kernel = await resolveKernel();
  const agentPath = join(scratch, 'agent');
  writeFileSync(agentPath, '#!/bin/sh\necho pretend agent\n', { mode: 0o755 });
  const cacheA = join(scratch, 'cache-a');
  let t = Date.now();
  const cold = await buildInitrd({ agentPath, kernel, cacheDir: cacheA });
  const coldMs = Date.now() - t;
  t = Date.now();
  const warm = await buildInitrd({ agentPath, kernel, cacheDir: cacheA });
  const warmMs = Date.now() - t;
  console.log(`  initrd: cold ${coldMs} ms, warm ${warmMs} ms, ${statSync(cold.path).size} bytes`);
  assert.not.ok(cold.cached);
  assert.ok(warm.cached);
  assert.is(warm.path, cold.path);
  assert.is(warm.digest, cold.digest);
  assert.is(cold.path, join(cacheA, 'initrd', `${cold.digest}.cpio`));
  assert.equal(readdirSync(join(cacheA, 'initrd')).sort(), [`${cold.digest}.cpio`, 'memo'], 'no temp files left');
  // A cache hit really skips the write: the file is not touched again.
  const mtime = statSync(cold.path).mtimeMs;
  await buildInitrd({ agentPath, kernel, cacheDir: cacheA });
  assert.is(statSync(cold.path).mtimeMs, mtime);
  // A second, independent build gives byte-identical output.
  const other = await buildInitrd({ agentPath, kernel, cacheDir: join(scratch, 'cache-b') });
  assert.is(other.digest, cold.digest);
  assert.is(sha256(readFileSync(other.path)), sha256(readFileSync(cold.path)));
  // A different agent is a different initrd.
  writeFileSync(agentPath, '#!/bin/sh\necho another agent\n');
  const changed = await buildInitrd({ agentPath, kernel, cacheDir: cacheA });
  assert.is.not(changed.digest, cold.digest);
  assert.not.ok(changed.cached);
});

test('buildInitrd\'s memo: unchanged inputs skip the reads; a changed input, a lost archive or a garbled memo build again', async () => {
  const kernel = await resolveKernel();
  const agentPath = join(scratch, 'agent-memo');
  writeFileSync(agentPath, '#!/bin/sh\necho memo agent\n', { mode: 0o755 });
  const cacheDir = join(scratch, 'cache-memo');
  const run = async () => {
    const said: string[] = [];
    const built = await buildInitrd({ agentPath, kernel, cacheDir, onProgress: (m) => said.push(m) });
    return { built, fromMemo: said.some((m) => /inputs unchanged since [0-9a-f]{12}: cache hit/.test(m)) };
  };
  const first = await run();
  assert.not.ok(first.fromMemo, 'no memo before the first build');
  const memoDir = join(cacheDir, 'initrd', 'memo');
  const [memoFile] = readdirSync(memoDir);
  const memo = JSON.parse(readFileSync(join(memoDir, memoFile!), 'utf8')) as { digest: string; modules: string[]; inputs: Record<string, string> };
  assert.is(memo.digest, first.built.digest);
  assert.equal(memo.modules, first.built.modules);
  for (const input of [agentPath, join(kernel.modulesDir, 'modules.builtin')]) assert.ok(input in memo.inputs, `${input} is an input`);
  assert.ok(Object.keys(memo.inputs).some((p) => p.endsWith('/initrd.js')), 'the code that lays the archive out is an input');
  const again = await run();
  assert.ok(again.fromMemo);
  assert.equal(again.built, { ...first.built, cached: true });
  // A changed input (same path): built again, and the new memo serves the next call.
  writeFileSync(agentPath, '#!/bin/sh\necho memo agent, changed\n');
  const changed = await run();
  assert.not.ok(changed.fromMemo);
  assert.is.not(changed.built.digest, first.built.digest);
  assert.ok((await run()).fromMemo);
  // The archive it names is gone (a cache cleaned by hand): built again, not a path to nothing.
  rmSync(changed.built.path);
  const rebuilt = await run();
  assert.not.ok(rebuilt.fromMemo);
  assert.is(rebuilt.built.digest, changed.built.digest);
  assert.ok(statSync(rebuilt.built.path).size > 0);
  // A garbled memo is no memo.
  writeFileSync(join(memoDir, readdirSync(memoDir)[0]!), '{"version": 1, "key"');
  const garbled = await run();
  assert.not.ok(garbled.fromMemo);
  assert.is(garbled.built.digest, changed.built.digest);
});

test('buildInitrd contents, read back with GNU cpio', async () => {
  const kernel = await resolveKernel({ packageFrom: false }); // virtio-net is only in the full tree
  const agentPath = join(scratch, 'agent2');
  writeFileSync(agentPath, '#!/bin/sh\necho contents test\n', { mode: 0o755 });
  const built = await buildInitrd({ agentPath, kernel, cacheDir: join(scratch, 'cache-c'), extraModules: ['virtio-net'] });
  const archive = readFileSync(built.path);
  const listing = spawnSync('cpio', ['-t', '--quiet'], { input: archive, encoding: 'utf8' });
  assert.is(listing.status, 0, listing.stderr);
  const names = new Set(listing.stdout.trim().split('\n'));
  for (const n of ['init', 'dev/console', 'bin/busybox', 'bin/sh', 'sbin/insmod', 'usr/bin/env', 'etc/vc-modules', 'etc/passwd',
    'etc/group', 'etc/hostname', 'proc', 'sys', 'tmp', 'root', `lib/modules/${kernel.release}`]) {
    assert.ok(names.has(n), `${n} in the archive`);
  }
  assert.not.ok(names.has('linuxrc'));
  assert.not.ok(names.has('sbin/init'));
  // /etc/vc-modules: every module is in the archive and its dependencies come earlier.
  const list = spawnSync('cpio', ['-i', '--quiet', '--to-stdout', 'etc/vc-modules'], { input: archive, encoding: 'utf8' }).stdout;
  const modules = list.trim().split('\n');
  assert.equal(modules, built.modules);
  const byName = new Map(modules.map((p, i) => [p.replace(/^.*\//, '').replace(/\.ko$/, ''), i]));
  assert.ok(byName.has('virtio_net'), 'extra module included');
  assert.ok(byName.has('net_failover'), 'and its dependencies');
  for (const path of modules) {
    assert.ok(names.has(path.slice(1)), `${path} in the archive`);
    const info = parseModinfo(readFileSync(join(kernel.modulesDir, path.slice(`/lib/modules/${kernel.release}/`.length))), path);
    for (const dep of info.depends) assert.ok(byName.get(dep)! < byName.get(info.name!)!, `${dep} before ${info.name}`);
  }
  const init = spawnSync('cpio', ['-i', '--quiet', '--to-stdout', 'init'], { input: archive, encoding: 'utf8' }).stdout;
  assert.is(init, readFileSync(agentPath, 'utf8'));
});

test('buildInitrd: a missing agent is INVALID_OPTION naming it', async () => {
  const kernel = await resolveKernel();
  try {
    await buildInitrd({ agentPath: '/nonexistent/vc-agent', kernel, cacheDir: join(scratch, 'cache-d') });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, GuestError);
    assert.is((err as GuestError).code, 'INVALID_OPTION');
    assert.is((err as Error).message, 'agent: /nonexistent/vc-agent does not exist');
  }
});

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

test.run();
