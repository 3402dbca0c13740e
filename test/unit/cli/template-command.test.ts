// `virtc template …` as a user runs it (its own process, a state root of the test's own), for what
// needs no VM: the empty list, and every refusal with its exit code and message — a bad name, QEMU
// (UNSUPPORTED), a missing template, a missing NAME, and `template verify` of a damaged template
// (the real `vc-vmm snapshot verify`, which reads files and needs no KVM). Templates made and used: test/unit/api/template.test.ts
// (fake hypervisor) and test/nested/kvm-template.test.ts (the built-in VMM).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../helpers/tmp.js';

const virtc = fileURLToPath(new URL('../../../../bin/virtc.js', import.meta.url));
const tmp = tempDir('vc-tcli');
test.after(() => tmp.remove());

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [virtc, '--root', tmp.path, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('template list: a header and nothing else; --json: []', () => {
  const table = run('template', 'list');
  assert.is(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAME\s+VCPUS\s+MEMORY\s+FILES\s+VMM\s+CREATED\s+USED BY\n$/);
  const json = run('template', 'list', '--json');
  assert.equal(JSON.parse(json.stdout), []);
});

test('template create/delete/verify refusals: exit code and message', () => {
  const bad = run('template', 'create', 'bad/name');
  assert.is(bad.code, 1);
  assert.match(bad.stderr, 'invalid template config: name: must be 1-54 characters of letters, digits, _ . - starting with a letter or digit, got "bad/name" [INVALID_CONFIG]');
  const qemu = run('template', 'create', 't1', '--hypervisor', 'qemu');
  assert.is(qemu.code, 1);
  assert.match(qemu.stderr, "UNSUPPORTED: pod templates need the built-in VMM (hypervisor: 'kvm'): hypervisor is \"qemu\" [UNSUPPORTED]");
  for (const [verb, usage] of [['delete', 'virtc template delete NAME [--force]'], ['verify', 'virtc template verify NAME [--json]']]) {
    const missing = run('template', verb!, 'nope');
    assert.is(missing.code, 1);
    assert.match(missing.stderr, /template "nope" not found in .*\/templates \[TEMPLATE_NOT_FOUND\]/);
    const noName = run('template', verb!);
    assert.is(noName.code, 2);
    assert.match(noName.stderr, `expected one template NAME, got none\nusage: ${usage}`);
  }
  const two = run('template', 'create', 'a', 'b');
  assert.is(two.code, 2);
  assert.match(two.stderr, 'expected one template NAME, got "a" "b"');
  const verb = run('template', 'make');
  assert.is(verb.code, 2);
  assert.match(verb.stderr, 'unknown template command "make"');
});

test('template verify: a damaged snapshot, in vc-vmm\'s own words', () => {
  // A template whose record is whole but whose state file is not a snapshot (a bad copy).
  const dir = join(tmp.path, 'templates', 'copied');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'template.json'), JSON.stringify({
    version: 1, name: 'copied', hypervisor: 'kvm', vcpus: 1, memoryMiB: 64, vmmVersion: 'vc-vmm 0.1.0', createdAt: new Date().toISOString(),
    kernel: { path: '/boot/vmlinuz', release: '6.1.0' }, initrd: { path: '/tmp/initrd', digest: 'x' }, nics: [], bytes: { state: 12, memory: 4096 },
  }));
  writeFileSync(join(dir, 'state'), 'not a state\n');
  writeFileSync(join(dir, 'memory'), Buffer.alloc(4096));
  const damaged = run('template', 'verify', 'copied');
  assert.is(damaged.code, 1, damaged.stdout);
  assert.match(damaged.stderr, /^virtc: template "copied": vc-vmm snapshot verify: \/\S+\/templates\/copied\/state: snapshot state file: the file is 12 bytes, shorter than the 64-byte header \(truncated\?\) \[TEMPLATE_CORRUPT\]$/m);
});

test.run();
