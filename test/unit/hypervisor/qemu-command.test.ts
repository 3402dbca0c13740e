import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { qemuArgs, qemuSandbox, tscKhzFromCpuinfo } from '../../../src/hypervisor/qemu/command.js';
import { agentPortCount, MAX_AGENT_PORTS, QEMU_AGENT_PORTS, qemuAgentPorts } from '../../../src/hypervisor/qemu/agent-ports.js';
import { QemuHypervisor } from '../../../src/hypervisor/qemu/qemu.js';
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
  assert.equal(valueAfter(args, '-pidfile'), ['/r/pods/p1/vmm.pid']);
  assert.ok(args.includes('-no-reboot'));
  // In the foreground: the library detaches it, so its sandbox can deny spawning (below).
  assert.not.ok(args.includes('-daemonize'));
});

test('QEMU runs under its full seccomp sandbox; as root it keeps root only when told to (VC_VMM_JAIL=0)', () => {
  for (const accel of ['tcg', 'kvm'] as const) {
    const args = qemuArgs(spec, accel);
    assert.equal(valueAfter(args, '-sandbox'), ['on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny']);
    assert.not.ok(args.includes('-runas'));
  }
});

test('a QEMU that drops root runs as the given uid:gid and may make the set*id calls of its own -runas', () => {
  const args = qemuArgs(spec, 'tcg', { runAs: { uid: 65534, gid: 65534 } });
  assert.equal(valueAfter(args, '-runas'), ['65534:65534']);
  assert.equal(valueAfter(args, '-sandbox'), ['on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny']);
  assert.is(qemuSandbox({ uid: 1000, gid: 1000 }), 'on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny');
  assert.is(qemuSandbox(null), 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
});

test('the agent gets 16 virtio-serial ports agent.0 … agent.15, each on its own socket chardev in the pod directory', () => {
  const args = qemuArgs({ ...spec, memoryMiB: 512 }, 'tcg');
  assert.is(QEMU_AGENT_PORTS, 16);
  const chardevs = valueAfter(args, '-chardev').filter((c) => c.startsWith('socket,'));
  const ports = valueAfter(args, '-device').filter((d) => d.startsWith('virtserialport,'));
  assert.is(chardevs.length, 16);
  assert.is(chardevs[0], 'socket,id=agent0,path=/r/pods/p1/agent.0.sock,server=on,wait=off');
  assert.is(chardevs[15], 'socket,id=agent15,path=/r/pods/p1/agent.15.sock,server=on,wait=off');
  assert.equal(ports, Array.from({ length: 16 }, (_, i) => `virtserialport,chardev=agent${i},name=agent.${i}`));
  // QEMU keeps port number 0 for a console: 16 named ports need max_ports=17 (16 fails to start).
  assert.equal(valueAfter(args, '-device').filter((d) => d.startsWith('virtio-serial-device')), ['virtio-serial-device,max_ports=17']);
  // The console stays on the 8250 serial port.
  assert.ok(valueAfter(args, '-chardev').includes('file,id=console,path=/r/pods/p1/console.log'));
});

test('smaller pods get fewer ports: one per 32 MiB of guest RAM, 4 to 16', () => {
  assert.equal([128, 256, 384, 511, 512, 4096].map(agentPortCount), [4, 8, 12, 15, 16, 16]);
  const args = qemuArgs(spec, 'tcg'); // 384 MiB
  assert.is(valueAfter(args, '-device').filter((d) => d.startsWith('virtserialport,')).length, 12);
  assert.ok(valueAfter(args, '-device').includes('virtio-serial-device,max_ports=13'));
});

test('the port count can be set (1 … 510) and anything else is refused naming the value', () => {
  const one = qemuArgs(spec, 'tcg', { agentPorts: 1 });
  assert.equal(valueAfter(one, '-device').filter((d) => d.startsWith('virtserialport,')), ['virtserialport,chardev=agent0,name=agent.0']);
  assert.ok(valueAfter(one, '-device').includes('virtio-serial-device,max_ports=2'));
  assert.is(qemuAgentPorts(spec.paths, MAX_AGENT_PORTS).length, 510);
  for (const bad of [0, 511, 2.5, Number.NaN]) {
    assert.throws(() => qemuAgentPorts(spec.paths, bad), (err: Error) => err.message.includes(`agent port count ${JSON.stringify(bad)}`));
  }
});

test('the QEMU agent endpoint is the recorded number of port sockets with their lease files', () => {
  const qemu = new QemuHypervisor();
  const paths = podPaths('/r', 'p1');
  const ports = (vmm?: { agentPorts: number }) => {
    const endpoint = qemu.agentEndpoint(paths, vmm && { pid: 1, startedAt: '', ...vmm });
    assert.is(endpoint.kind, 'leased-ports');
    return endpoint.kind === 'leased-ports' ? endpoint.ports : [];
  };
  assert.is(ports({ agentPorts: 4 }).length, 4);
  assert.equal(ports({ agentPorts: 4 })[3], { socket: '/r/pods/p1/agent.3.sock', lease: '/r/pods/p1/agent.3.lease' });
  assert.is(ports().length, 16, 'without a VM record: the widest endpoint (path length checks)');
});

test('tcg boots are told the host TSC rate; kvm boots are not', () => {
  assert.equal(valueAfter(qemuArgs(spec, 'tcg', { hostTscKhz: 2445430 }), '-append'), ['console=ttyS0 reboot=t tsc_early_khz=2445430']);
  assert.equal(valueAfter(qemuArgs(spec, 'kvm', { hostTscKhz: 2445430 }), '-append'), ['console=ttyS0 reboot=t']);
});

test('the TSC rate is read from cpuinfo, and absent when cpuinfo has none', () => {
  assert.is(tscKhzFromCpuinfo('processor\t: 0\ncpu MHz\t\t: 2445.430\ncache size : 512 KB\n'), 2445430);
  assert.is(tscKhzFromCpuinfo('processor\t: 0\n'), undefined);
});

test.run();
