// The nested-KVM harness's pure parts, on the host without booting L1: the L1 initrd's layout and
// /init script, the modules it loads (from the real Debian generic kernel), the run script and
// its quoting, the marker scanner of the output channel, QEMU's arguments and the vmlinux unpacker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCpio } from '../../src/guest/cpio.js';
import { initrdDigest } from '../../src/guest/initrd.js';
import { resolveKernel } from '../../src/guest/kernel.js';
import { resolveModules } from '../../src/guest/modules.js';
import { L1_MODULES, l1InitScript, planL1Initrd, type L1InitrdInputs } from '../harness/l1-initrd.js';
import { L1Error, l1CpusFromEnv, l1KernelPanic, l1Params, l1QemuArgs, l1RunScript, MarkerScanner, shQuote, type ScanItem } from '../harness/l1.js';
import { bzImagePayload, hasPvhNote } from '../harness/vmlinux.js';
import { expectCode } from '../helpers/errors.js';
import { GuestError } from '../../src/guest/errors.js';

const scratch = mkdtempSync(join(tmpdir(), 'vc-l1-unit-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));

const inputs: L1InitrdInputs = {
  release: '6.1.0-99-amd64',
  modules: [
    { relPath: 'kernel/arch/x86/kvm/kvm.ko', data: Buffer.from('kvm') },
    { relPath: 'kernel/arch/x86/kvm/kvm-amd.ko', data: Buffer.from('kvm-amd') },
  ],
  busybox: { data: Buffer.from('busybox'), applets: ['bin/sh', 'sbin/insmod', 'sbin/init'] },
};

test('planL1Initrd: /init is the shell script, modules in the given order, busybox links', () => {
  const spec = planL1Initrd(inputs);
  const by = new Map(spec.entries.map((e) => [e.name, e]));
  const init = by.get('init');
  assert.ok(init?.type === 'file' && init.mode === 0o755);
  assert.is(Buffer.from(init.data).toString(), l1InitScript());
  assert.ok(l1InitScript().startsWith('#!/bin/busybox sh\n'));
  assert.equal(spec.modules, ['/lib/modules/6.1.0-99-amd64/kernel/arch/x86/kvm/kvm.ko', '/lib/modules/6.1.0-99-amd64/kernel/arch/x86/kvm/kvm-amd.ko']);
  assert.equal(by.get('bin/sh'), { type: 'symlink', name: 'bin/sh', target: '/bin/busybox' });
  assert.is(by.get('sbin/init'), undefined);
  assert.is(by.get('dev/console')?.type, 'chardev');
  const hostname = by.get('etc/hostname');
  assert.ok(hostname?.type === 'file' && Buffer.from(hostname.data).toString() === 'vc-l1\n');
  // Deterministic: the same inputs give the same bytes and digest.
  assert.ok(encodeCpio(spec.entries).equals(encodeCpio(planL1Initrd(inputs).entries)));
  assert.is.not(initrdDigest(spec), initrdDigest(planL1Initrd({ ...inputs, release: '6.1.0-98-amd64' })));
});

test('the /init script is valid busybox sh', () => {
  const check = spawnSync('/bin/busybox', ['sh', '-n'], { input: l1InitScript(), encoding: 'utf8' });
  if (check.error) { console.log(`SKIP busybox sh -n: ${check.error.message}`); return; }
  assert.is(check.status, 0, check.stderr);
});

test('L1 modules from the Debian generic kernel: dependencies first, all present', async () => {
  const kernel = await resolveKernel({ flavor: 'generic' });
  assert.match(kernel.release, /^\d+\.\d+\.\d+-\d+-amd64$/);
  const plan = await resolveModules(kernel.modulesDir, L1_MODULES, { release: kernel.release });
  const names = plan.load.map((m) => m.name);
  for (const m of L1_MODULES) assert.ok(names.includes(m.replace(/-/g, '_')), `${m} is loaded`);
  for (const m of plan.load) {
    for (const dep of m.depends) assert.ok(names.indexOf(dep) < names.indexOf(m.name), `${dep} before ${m.name}`);
  }
  assert.ok(names.indexOf('kvm') < names.indexOf('kvm_amd'));
  assert.ok(names.indexOf('9pnet') < names.indexOf('9pnet_virtio'));
  const cloud = await resolveKernel();
  assert.match(cloud.release, /-cloud-amd64$/, 'the default flavor is still the cloud kernel');
  assert.is.not(cloud.kernelPath, kernel.kernelPath);
  await expectCode(resolveKernel({ flavor: 'rt' as never }), GuestError, 'INVALID_OPTION', /flavor: rt is not 'cloud' or 'generic'/);
});

test('run script: cwd, a clean env and argv survive any quoting, run by the host sh', () => {
  const env = { A: `it's "quoted" $HOME \`x\` \\ \n two lines`, PATH: process.env.PATH ?? '/usr/bin:/bin', VC_NESTED_L1: '1' };
  const script = l1RunScript({ command: ['sh', '-c', 'printf "%s|%s|%s|%s" "$A" "$1" "$(pwd)" "${HOME-unset}"', 'sh', "arg 'one'"], env, cwd: scratch });
  const r = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { HOME: '/nowhere', PATH: process.env.PATH } });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `${env.A}|arg 'one'|${scratch}|unset`);
  const missing = spawnSync('/bin/sh', ['-c', l1RunScript({ command: ['true'], env: {}, cwd: '/does/not/exist' })], { encoding: 'utf8' });
  assert.is(missing.status, 125);
  assert.throws(() => l1RunScript({ command: ['true'], env: { 'A-B': '1' }, cwd: '/' }), /not a valid variable name/);
  assert.is(shQuote(`a'b`), `'a'\\''b'`);
  const params = spawnSync('/bin/sh', ['-c', `${l1Params({ nonce: 'n1', scratch: "/tmp/a b'c", cache: '/root/.cache/virtcontainers' })}printf '%s|%s|%s' "$VC_NONCE" "$VC_SCRATCH" "$VC_CACHE"`], { encoding: 'utf8' });
  assert.is(params.stdout, "n1|/tmp/a b'c|/root/.cache/virtcontainers");
});

function scan(nonce: string, chunks: string[]): ScanItem[] {
  const s = new MarkerScanner(nonce);
  const items = [...chunks.flatMap((c) => s.feed(Buffer.from(c, 'latin1'))), ...s.end()];
  // Adjacent text items merged, as a reader of the stream sees them.
  const merged: ScanItem[] = [];
  for (const it of items) {
    const last = merged[merged.length - 1];
    if (it.kind === 'text' && last?.kind === 'text') merged[merged.length - 1] = { kind: 'text', data: Buffer.concat([last.data, it.data]) };
    else merged.push(it);
  }
  return merged.map((it) => (it.kind === 'text' ? { kind: 'text', data: it.data.toString('latin1') } as unknown as ScanItem : it));
}

test('marker scanner: markers split over chunks, output kept byte for byte', () => {
  const stream = 'boot noise?\x1eVC-L1-START n1\x1ehello\nworld\x1eVC-L1-EXIT n1 3\x1e';
  const whole = scan('n1', [stream]);
  assert.equal(whole, [{ kind: 'text', data: 'boot noise?' }, { kind: 'start' }, { kind: 'text', data: 'hello\nworld' }, { kind: 'exit', code: 3 }] as unknown as ScanItem[]);
  for (let cut = 1; cut < stream.length; cut++) {
    assert.equal(scan('n1', [stream.slice(0, cut), stream.slice(cut)]), whole, `cut at ${cut}`);
  }
  assert.equal(scan('n1', stream.split('')), whole, 'one byte at a time');
});

test('marker scanner: a wrong nonce or a lone \\x1e is output; FAIL before the nonce is known counts', () => {
  assert.equal(scan('n1', ['a\x1eVC-L1-EXIT other 0\x1eb\x1e', 'c\x1eVC-L1-EXIT n1 0\x1e']),
    [{ kind: 'text', data: 'a\x1eVC-L1-EXIT other 0\x1eb\x1ec' }, { kind: 'exit', code: 0 }] as unknown as ScanItem[]);
  assert.equal(scan('n1', ['\x1eVC-L1-FAIL none no /dev/kvm: kvm_amd did not load\x1e']), [{ kind: 'fail', why: 'no /dev/kvm: kvm_amd did not load' }]);
  assert.equal(scan('n1', ['x\x1eVC-L1-EXIT n1 notanumber\x1e']), [{ kind: 'text', data: 'x\x1eVC-L1-EXIT n1 notanumber\x1e' }] as unknown as ScanItem[]);
  // An unterminated lookalike is held back only while it could still become a marker.
  const s = new MarkerScanner('n1');
  assert.equal(s.feed(Buffer.from('ab\x1eVC-L1-')).map((i) => i.kind), ['text']);
  const rest = s.feed(Buffer.from('x'.repeat(700)));
  assert.is(Buffer.concat(rest.flatMap((i) => (i.kind === 'text' ? [i.data] : []))).toString(), `\x1eVC-L1-${'x'.repeat(700)}`);
});

test('L1\'s vCPUs where the caller names none: 2, or VC_L1_CPUS from 1 to 8; anything else named', () => {
  assert.is(l1CpusFromEnv({}), 2);
  assert.is(l1CpusFromEnv({ VC_L1_CPUS: '' }), 2);
  assert.is(l1CpusFromEnv({ VC_L1_CPUS: '1' }), 1);
  assert.is(l1CpusFromEnv({ VC_L1_CPUS: '8' }), 8);
  for (const bad of ['0', '9', '1.5', 'two']) {
    assert.throws(() => l1CpusFromEnv({ VC_L1_CPUS: bad }), (err: L1Error) => err.code === 'L1_INVALID' && err.message === `runInL1: VC_L1_CPUS must be a whole number from 1 to 8, got ${JSON.stringify(bad)}`);
  }
});

test('QEMU arguments: SVM CPU, microvm, both 9p shares, the control dir on the cmdline', () => {
  const args = l1QemuArgs({ kernel: '/k', initrd: '/i', ctl: '/tmp/vc-l1-x', scratch: '/tmp/s', memoryMiB: 4096, cpus: 2, tscKhz: 2445430 });
  const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);
  assert.equal(after('-cpu'), ['EPYC,+svm,+npt']);
  assert.match(after('-M')[0] ?? '', /^microvm,/);
  assert.equal(after('-m'), ['4096M']);
  assert.equal(after('-smp'), ['2']);
  assert.match(after('-append')[0] ?? '', /(^| )vc_ctl=\/tmp\/vc-l1-x( |$)/);
  assert.match(after('-append')[0] ?? '', /tsc_early_khz=2445430/);
  assert.ok(after('-fsdev').some((f) => f.startsWith('local,id=root,path=/,') && f.includes('readonly=on')));
  assert.ok(after('-fsdev').some((f) => f.startsWith('local,id=scratch,path=/tmp/s,') && !f.includes('readonly')));
  assert.ok(args.includes('-nodefaults'));
  assert.throws(() => l1QemuArgs({ kernel: '/k', initrd: '/i', ctl: '/tmp/c', scratch: '/tmp/a,b', memoryMiB: 1, cpus: 1 }), /comma/);
});

test('bzImage payload: header fields, compression, PVH note of the unpacked kernel', async () => {
  const fake = Buffer.alloc(4096);
  fake.write('HdrS', 0x202, 'latin1');
  fake.writeUInt16LE(0x20f, 0x206);
  fake[0x1f1] = 3; // payload relative to (3 + 1) * 512
  fake.writeUInt32LE(100, 0x248);
  fake.writeUInt32LE(64, 0x24c);
  Buffer.from('1f8b0800', 'hex').copy(fake, 2048 + 100);
  assert.equal(bzImagePayload(fake), { offset: 2148, length: 64, format: 'gzip' });
  fake.writeUInt32LE(4000, 0x24c);
  assert.throws(() => bzImagePayload(fake), /outside/);
  assert.throws(() => bzImagePayload(Buffer.alloc(100)), /not a bzImage/);
  const kernel = await resolveKernel({ flavor: 'generic' });
  const real = bzImagePayload(readFileSync(kernel.kernelPath));
  assert.is(real.format, 'xz', 'Debian compresses its kernels with xz');
  assert.not.ok(hasPvhNote(readFileSync('/bin/busybox')), 'busybox has no PVH note');
});

test('l1KernelPanic: the panic of an L1 that exited, nothing for other ends', () => {
  const console = '[   25.4] BUG: TASK stack guard page was hit\n[   78.0] Kernel panic - not syncing: corrupted stack end detected inside scheduler\n[   78.0] Kernel Offset: disabled';
  assert.is(l1KernelPanic(new L1Error('L1_EXITED', 'L1: QEMU exited', console, '')), 'corrupted stack end detected inside scheduler');
  assert.is(l1KernelPanic(new L1Error('L1_EXITED', 'L1: QEMU exited', '[ 1.0] reboot: Power down', '')), null);
  assert.is(l1KernelPanic(new L1Error('L1_TIMEOUT', 'L1: no result', console, '')), null, 'a timed-out L1 is not reported as panicked');
  assert.is(l1KernelPanic(new Error('Kernel panic - not syncing: x')), null);
});

test.run();
