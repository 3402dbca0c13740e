import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GuestError } from '../../../src/guest/errors.js';
import { resolveKernel } from '../../../src/guest/kernel.js';
import {
  findModuleFiles, GUEST_MODULES, loadOrder, parseModinfo, readBuiltinModules, resolveModules,
} from '../../../src/guest/modules.js';

/** A minimal relocatable ELF64 (what a .ko is) with a .modinfo section holding `fields`. */
function fakeKo(fields: Record<string, string>): Buffer {
  const modinfo = Buffer.from(Object.entries(fields).map(([k, v]) => `${k}=${v}\0`).join(''));
  const strtab = Buffer.from('\0.modinfo\0.shstrtab\0');
  const shoff = 64 + modinfo.length + strtab.length;
  const buf = Buffer.alloc(shoff + 3 * 64);
  buf.write('\x7fELF', 0, 'latin1');
  buf[4] = 2; buf[5] = 1; buf[6] = 1;
  buf.writeUInt16LE(1, 0x10); buf.writeUInt16LE(62, 0x12);
  buf.writeBigUInt64LE(BigInt(shoff), 0x28);
  buf.writeUInt16LE(64, 0x3a); buf.writeUInt16LE(3, 0x3c); buf.writeUInt16LE(2, 0x3e);
  modinfo.copy(buf, 64);
  strtab.copy(buf, 64 + modinfo.length);
  const sh = (i: number, name: number, type: number, off: number, size: number) => {
    const o = shoff + i * 64;
    buf.writeUInt32LE(name, o); buf.writeUInt32LE(type, o + 4);
    buf.writeBigUInt64LE(BigInt(off), o + 0x18); buf.writeBigUInt64LE(BigInt(size), o + 0x20);
  };
  sh(1, 1, 1, 64, modinfo.length);
  sh(2, 10, 3, 64 + modinfo.length, strtab.length);
  return buf;
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string, message?: string | RegExp): Promise<void> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    assert.instance(err, GuestError, String(err));
    assert.is((err as GuestError).code, code, (err as Error).message);
    if (message) assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

const scratch = mkdtempSync(join(tmpdir(), 'vc-modules-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

/** A synthetic modules dir: { relPath: modinfo fields }, plus optional modules.builtin lines. */
function modulesDir(name: string, files: Record<string, Record<string, string> | Buffer>, builtin: string[] = []): string {
  const dir = join(scratch, name);
  for (const [rel, fields] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), Buffer.isBuffer(fields) ? fields : fakeKo(fields));
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'modules.builtin'), builtin.map((b) => `${b}\n`).join(''));
  return dir;
}

test('parseModinfo: name, depends (with - read as _), vermagic', () => {
  const info = parseModinfo(fakeKo({ license: 'GPL', depends: 'virtio-ring,virtio', name: 'virtio_mmio', vermagic: '6.1.0-1-x SMP mod_unload' }), 'x.ko');
  assert.equal(info, { name: 'virtio_mmio', depends: ['virtio_ring', 'virtio'], vermagic: '6.1.0-1-x SMP mod_unload' });
  assert.equal(parseModinfo(fakeKo({ depends: '' }), 'x.ko').depends, []);
});

test('parseModinfo: garbage, truncated or section-less files are ELF_INVALID, not crashes', async () => {
  await expectCode(() => parseModinfo(Buffer.from('garbage'.repeat(20)), 'g.ko'), 'ELF_INVALID', 'g.ko');
  const ko = fakeKo({ name: 'a' });
  for (const len of [0, 10, 63, 64, ko.length - 1]) await expectCode(() => parseModinfo(ko.subarray(0, len), 't.ko'), 'ELF_INVALID');
  const noModinfo = Buffer.from(ko);
  noModinfo.write('.nomodi', 64 + 'name=a\0'.length + 1, 'latin1'); // rename the section
  await expectCode(() => parseModinfo(noModinfo, 'n.ko'), 'ELF_INVALID', 'no .modinfo');
});

test('loadOrder: dependencies first, deterministic, shared deps once', () => {
  const deps = new Map([['app', ['b', 'a']], ['a', ['base']], ['b', ['base']], ['base', []], ['lone', []]]);
  const order = loadOrder(deps, ['app', 'lone']);
  assert.equal(order, ['base', 'b', 'a', 'app', 'lone']);
  for (const [m, ds] of deps) for (const d of ds) assert.ok(order.indexOf(d) < order.indexOf(m), `${d} before ${m}`);
});

test('loadOrder: a cycle is MODULE_CYCLE naming its members', async () => {
  const deps = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]]);
  await expectCode(() => loadOrder(deps, ['a']), 'MODULE_CYCLE', 'a -> b -> c -> a');
  await expectCode(() => loadOrder(new Map([['s', ['s']]]), ['s']), 'MODULE_CYCLE', 's -> s');
});

test('resolveModules on a synthetic tree: - and _ alike, built-ins skipped, closure in order', async () => {
  const dir = modulesDir('synthetic', {
    'kernel/a/top-mod.ko': { name: 'top_mod', depends: 'mid,built-in-one', vermagic: '9.9.9-test SMP' },
    'kernel/b/mid.ko': { name: 'mid', depends: 'leaf-dash', vermagic: '9.9.9-test SMP' },
    'kernel/c/leaf_dash.ko': { name: 'leaf_dash', depends: '', vermagic: '9.9.9-test SMP' },
    'kernel/d/unrelated.ko': { name: 'unrelated', depends: 'missing' },
  }, ['kernel/x/built-in-one.ko', 'kernel/x/builtin_wanted.ko']);
  const plan = await resolveModules(dir, ['top-mod', 'builtin-wanted'], { release: '9.9.9-test' });
  assert.equal(plan.load.map((m) => m.name), ['leaf_dash', 'mid', 'top_mod']);
  assert.equal(plan.load.map((m) => m.relPath), ['kernel/c/leaf_dash.ko', 'kernel/b/mid.ko', 'kernel/a/top-mod.ko']);
  assert.equal(plan.builtin, ['built_in_one', 'builtin_wanted']);
  assert.equal(await readBuiltinModules(dir), new Set(['built_in_one', 'builtin_wanted']));
  assert.equal(await findModuleFiles(dir), ['kernel/a/top-mod.ko', 'kernel/b/mid.ko', 'kernel/c/leaf_dash.ko', 'kernel/d/unrelated.ko']);
});

test('resolveModules errors: missing module or dependency, cycle, mismatch, compressed, bad ELF', async () => {
  const dir = modulesDir('errors', {
    'kernel/needs.ko': { name: 'needs', depends: 'absent' },
    'kernel/c1.ko': { name: 'c1', depends: 'c2' },
    'kernel/c2.ko': { name: 'c2', depends: 'c1' },
    'kernel/liar.ko': { name: 'somebody_else' },
    'kernel/old.ko': { name: 'old', vermagic: '5.10.0-1-amd64 SMP' },
    'kernel/packed.ko.xz': Buffer.from('xz'),
    'kernel/broken.ko': Buffer.from('\x7fELF broken'),
  });
  await expectCode(resolveModules(dir, ['nothere']), 'MODULE_NOT_FOUND', /module nothere: no nothere\.ko in .* and not listed in its modules\.builtin/);
  await expectCode(resolveModules(dir, ['needs']), 'MODULE_NOT_FOUND', 'module absent (needed by needs)');
  await expectCode(resolveModules(dir, ['c1']), 'MODULE_CYCLE', 'c1 -> c2 -> c1');
  await expectCode(resolveModules(dir, ['liar']), 'MODULE_MISMATCH', 'declares name=somebody_else');
  await expectCode(resolveModules(dir, ['old'], { release: '6.1.0-56-cloud-amd64' }), 'MODULE_MISMATCH', 'built for kernel 5.10.0-1-amd64');
  await expectCode(resolveModules(dir, ['packed']), 'MODULE_UNSUPPORTED', 'packed.ko.xz');
  await expectCode(resolveModules(dir, ['broken']), 'ELF_INVALID', 'broken.ko');
  // Without a release to check against, vermagic does not matter.
  assert.equal((await resolveModules(dir, ['old'])).load.map((m) => m.name), ['old']);
});

// ---- the real Debian cloud kernel ----

test('real cloud kernel: which wanted modules are built in, and .modinfo of every module parses', async () => {
  const k = await resolveKernel({ packageFrom: false }); // the full module tree from apt, not the package's few
  const builtin = await readBuiltinModules(k.modulesDir);
  const wantedBuiltin = GUEST_MODULES.filter((m) => builtin.has(m));
  console.log(`  ${k.release}: ${builtin.size} built-in modules; of the wanted ones built in: ${wantedBuiltin.join(', ') || 'none'}`);
  assert.ok(builtin.has('binfmt_script'), 'modules.builtin was read (binfmt_script is built in)');
  const files = await findModuleFiles(k.modulesDir);
  assert.ok(files.length > 500, `${files.length} module files`);
  for (const rel of files) {
    const info = parseModinfo(readFileSync(join(k.modulesDir, rel)), rel);
    assert.is(info.name, rel.replace(/^.*\//, '').replace(/\.ko$/, '').replace(/-/g, '_'), rel);
    assert.is(info.vermagic?.split(' ')[0], k.release, rel);
  }
});

test('GUEST_MODULES: the NIC for pod networking, after the modules it depends on', () => {
  const at = (m: string) => GUEST_MODULES.indexOf(m);
  assert.ok(at('failover') >= 0 && at('failover') < at('net_failover') && at('net_failover') < at('virtio_net'), GUEST_MODULES.join(' '));
  assert.is(new Set(GUEST_MODULES).size, GUEST_MODULES.length, 'no module twice');
});

test('real cloud kernel: closure and load order of GUEST_MODULES, checked against kmod modinfo', async () => {
  const k = await resolveKernel({ packageFrom: false }); // the full module tree from apt, not the package's few
  const plan = await resolveModules(k.modulesDir, GUEST_MODULES, { release: k.release });
  const names = plan.load.map((m) => m.name);
  console.log(`  load order: ${names.join(' ')}`);
  for (const want of GUEST_MODULES) assert.ok(names.includes(want) || plan.builtin.includes(want), `${want} resolved`);
  // 6.1.0-57-cloud-amd64: 21 modules to load, none built in; virtio_net needs net_failover, which
  // needs failover.
  assert.ok(names.indexOf('failover') < names.indexOf('net_failover') && names.indexOf('net_failover') < names.indexOf('virtio_net'), names.join(' '));
  assert.is(new Set(names).size, names.length, 'no module twice');
  for (const m of plan.load) {
    // kmod's modinfo is an independent reader of the same .modinfo data.
    const depends = execFileSync('/sbin/modinfo', ['-F', 'depends', m.path], { encoding: 'utf8' }).trim();
    assert.equal(m.depends, depends ? depends.split(',').sort() : [], `${m.name} depends`);
    for (const d of m.depends) assert.ok(names.indexOf(d) >= 0 && names.indexOf(d) < names.indexOf(m.name), `${d} loads before ${m.name}`);
  }
});

test.run();
