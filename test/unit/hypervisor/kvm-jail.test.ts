// The VMM jail's settings (src/hypervisor/kvm/jail.ts): on by default as root, off otherwise,
// configured through VC_VMM_JAIL / VC_VMM_JAIL_USER with errors naming the variable and value; and
// the jail root among the pod's resources so a crash-only undo removes it. The jail itself:
// test/native/vmm-jail.test.ts (no KVM) and test/nested/kvm-jail.test.ts (a real pod).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vmmArgs } from '../../../src/hypervisor/kvm/config.js';
import { jailArgs, jailRoot, snapshotFileLimit, vmmJail } from '../../../src/hypervisor/kvm/jail.js';
import { KvmHypervisor } from '../../../src/hypervisor/kvm/kvm.js';
import { podPaths } from '../../../src/store/paths.js';

const paths = podPaths('/r', 'p1');

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.is((err as { code?: string }).code, 'INVALID_CONFIG');
    return (err as Error).message;
  }
  assert.unreachable('expected INVALID_CONFIG');
  return '';
}

test('as root with nothing set: on, as nobody:nogroup, with the disk directories read-only', () => {
  assert.equal(vmmJail({}, true, paths, ['/c/images']), { root: '/r/pods/p1/vmm-root', uid: 65534, gid: 65534, readOnlyDirs: ['/c/images'] });
  assert.equal(vmmJail({ VC_VMM_JAIL: '1', VC_VMM_JAIL_USER: '4000:4001' }, true, paths, []), { root: '/r/pods/p1/vmm-root', uid: 4000, gid: 4001, readOnlyDirs: [] });
});

test('off when asked, and by default without root; asked for without root it is an error', () => {
  assert.is(vmmJail({ VC_VMM_JAIL: '0' }, true, paths, []), null);
  assert.is(vmmJail({ VC_VMM_JAIL: 'off' }, true, paths, []), null);
  assert.is(vmmJail({}, false, paths, []), null);
  assert.match(configError(() => vmmJail({ VC_VMM_JAIL: 'on' }, false, paths, [])), 'VC_VMM_JAIL="on": the VMM jail needs root');
});

test('bad values name the variable and the value', () => {
  assert.match(configError(() => vmmJail({ VC_VMM_JAIL: 'yes' }, true, paths, [])), 'VC_VMM_JAIL="yes": must be');
  assert.match(configError(() => vmmJail({ VC_VMM_JAIL_USER: 'nobody' }, true, paths, [])), 'VC_VMM_JAIL_USER="nobody": must be UID:GID');
  assert.match(configError(() => vmmJail({ VC_VMM_JAIL_USER: '5:' }, true, paths, [])), 'VC_VMM_JAIL_USER="5:"');
  assert.match(configError(() => vmmJail({ VC_VMM_JAIL_USER: '4294967295:1' }, true, paths, [])), 'two integers in 0..4294967294');
  assert.match(configError(() => vmmJail({ VC_VMM_JAIL_USER: '0:0' }, true, paths, [])), 'VC_VMM_JAIL_USER="0:0": the jail runs the VMM unprivileged');
});

test('vc-vmm flags: after the cgroups, one --jail-ro per directory; none without a jail', () => {
  const jail = vmmJail({ VC_VMM_JAIL_USER: '4000:4001' }, true, paths, ['/c/images', '/d']);
  assert.equal(vmmArgs(paths, ['/cg/p1'], jailArgs(jail)), [
    'run', '--config', '/r/pods/p1/vmm.json', '--detach', '--log', '/r/pods/p1/vmm.log', '--cgroup', '/cg/p1',
    '--jail', '/r/pods/p1/vmm-root', '--jail-user', '4000:4001', '--jail-ro', '/c/images', '--jail-ro', '/d',
  ]);
  assert.equal(jailArgs(null), []);
});

test('a template\'s source VM: --jail-fsize room for a memory file of RAM + 4 KiB, never below vc-vmm\'s 1 GiB', () => {
  assert.is(snapshotFileLimit(256), 2 ** 30);
  assert.is(snapshotFileLimit(2048), 2048 * 1024 * 1024 + 4096);
  const jail = { ...vmmJail({}, true, paths, [])!, maxFileBytes: snapshotFileLimit(1024) };
  assert.equal(jailArgs(jail).slice(-2), ['--jail-fsize', String(2 ** 30 + 4096)]);
  assert.equal(jailArgs(vmmJail({}, true, paths, [])).includes('--jail-fsize'), false, 'other VMs keep the default');
});

test('the jail root is among the resources a start records before it makes anything', () => {
  assert.is(jailRoot(paths), '/r/pods/p1/vmm-root');
  assert.equal(new KvmHypervisor().resources('p1', paths).dirs, ['/r/pods/p1/vmm-root']);
});

test.run();
