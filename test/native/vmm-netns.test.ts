// vc-vmm run/restore --netns PATH (native/vmm/cmd/run.cc) without KVM: the namespace is joined
// before anything else, so a bad one fails the start naming it, and a good one lets the run go on
// to its next step (here a config that does not exist). That the VMM then opens its taps in the
// namespace is what every bridge pod of test/kvm shows (they are made only there).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native, nativeExecutable } from '../../src/native.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('vc-vmm-netns');
const vmm = nativeExecutable('vc-vmm');
const problem = process.getuid?.() !== 0 ? 'needs root (setns into a network namespace)' : null;

test.after(() => {
  if (!problem) native().unmountNetns(join(dir.path, 'ns'));
  dir.remove();
});

if (problem) {
  test('vc-vmm --netns: skipped', () => { console.log(`\nSKIP vc-vmm --netns: ${problem}`); });
} else {
  test('vc-vmm run --netns: a relative path is a usage error; a missing or non-namespace file fails naming it; a namespace is joined first', () => {
    const config = join(dir.path, 'no-such-config.json');
    const relative = spawnSync(vmm, ['run', '--config', config, '--netns', 'ns'], { encoding: 'utf8' });
    assert.is(relative.status, 2);
    assert.match(relative.stderr, /unexpected argument --netns/);
    const missing = spawnSync(vmm, ['run', '--config', config, '--netns', join(dir.path, 'none')], { encoding: 'utf8' });
    assert.is(missing.status, 1);
    assert.match(missing.stderr, new RegExp(`vc-vmm run: cannot open network namespace ${join(dir.path, 'none')}: No such file or directory`));
    const plain = join(dir.path, 'plain');
    writeFileSync(plain, '');
    const notNs = spawnSync(vmm, ['restore', '--state', 's', '--memory', 'm', '--config', config, '--netns', plain], { encoding: 'utf8' });
    assert.is(notNs.status, 1);
    assert.match(notNs.stderr, new RegExp(`vc-vmm restore: cannot join network namespace ${plain}: Invalid argument`));
    const ns = join(dir.path, 'ns');
    writeFileSync(ns, '');
    native().makeNetns(ns);
    const joined = spawnSync(vmm, ['run', '--config', config, '--netns', ns], { encoding: 'utf8' });
    assert.is(joined.status, 2, joined.stderr);
    assert.match(joined.stderr, /cannot read config .*no-such-config\.json/, 'past the namespace, at the config');
  });
}

test.run();
