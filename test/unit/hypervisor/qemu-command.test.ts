import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { qemuArgs, tscKhzFromCpuinfo } from '../../../src/hypervisor/qemu/command.js';
import { podPaths } from '../../../src/store/paths.js';
import type { VmSpec } from '../../../src/hypervisor/types.js';

const spec: VmSpec = {
  id: 'p1', paths: podPaths('/r', 'p1'), vcpus: 2, memoryMiB: 384,
  kernelPath: '/k/vmlinuz', initrdPath: '/c/initrd.cpio', kernelCmdline: 'console=ttyS0',
};

function valueAfter(args: string[], flag: string): string[] {
  return args.flatMap((arg, i) => (arg === flag ? [args[i + 1]!] : []));
}

test('tcg: microvm with the legacy timers the kernel needs under emulation', () => {
  const args = qemuArgs(spec, 'tcg');
  assert.equal(valueAfter(args, '-M'), ['microvm,pit=on,pic=on,rtc=on,acpi=on']);
  assert.equal(valueAfter(args, '-accel'), ['tcg']);
  assert.not.ok(args.includes('-cpu'));
});

test('kvm: host CPU and plain microvm', () => {
  const args = qemuArgs(spec, 'kvm');
  assert.equal(valueAfter(args, '-accel'), ['kvm']);
  assert.equal(valueAfter(args, '-cpu'), ['host']);
});

test('resources, boot files, and every socket live in the pod directory', () => {
  const args = qemuArgs(spec, 'tcg');
  assert.equal(valueAfter(args, '-m'), ['384M']);
  assert.equal(valueAfter(args, '-smp'), ['2']);
  assert.equal(valueAfter(args, '-kernel'), ['/k/vmlinuz']);
  assert.equal(valueAfter(args, '-initrd'), ['/c/initrd.cpio']);
  assert.equal(valueAfter(args, '-append'), ['console=ttyS0 reboot=t']);
  assert.equal(valueAfter(args, '-qmp'), ['unix:/r/pods/p1/qmp.sock,server=on,wait=off']);
  assert.ok(valueAfter(args, '-chardev').includes('socket,id=agent,path=/r/pods/p1/agent.sock,server=on,wait=off'));
  assert.ok(valueAfter(args, '-device').includes('virtserialport,chardev=agent,name=agent'));
  assert.equal(valueAfter(args, '-pidfile'), ['/r/pods/p1/vmm.pid']);
  assert.ok(args.includes('-daemonize') && args.includes('-no-reboot'));
});

test('tcg boots are told the host TSC rate; kvm boots are not', () => {
  assert.equal(valueAfter(qemuArgs(spec, 'tcg', 2445430), '-append'), ['console=ttyS0 reboot=t tsc_early_khz=2445430']);
  assert.equal(valueAfter(qemuArgs(spec, 'kvm', 2445430), '-append'), ['console=ttyS0 reboot=t']);
});

test('the TSC rate is read from cpuinfo, and absent when cpuinfo has none', () => {
  assert.is(tscKhzFromCpuinfo('processor\t: 0\ncpu MHz\t\t: 2445.430\ncache size : 512 KB\n'), 2445430);
  assert.is(tscKhzFromCpuinfo('processor\t: 0\n'), undefined);
});

test.run();
