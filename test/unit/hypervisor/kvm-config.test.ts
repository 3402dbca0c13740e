import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kvmCmdline } from '../../../src/hypervisor/cmdline.js';
import { AGENT_VSOCK_PORT, cgroupLimits, cgroupName, IMAGE_SLOTS, detachFailure, snapshotBytes, snapshotCheckOf, vmmArgs, vmmConfig, vmmEndFromLog, vmmRestoreArgs } from '../../../src/hypervisor/kvm/config.js';
import { KvmHypervisor } from '../../../src/hypervisor/kvm/kvm.js';
import { podPaths } from '../../../src/store/paths.js';
import type { VmSpec } from '../../../src/hypervisor/types.js';

const spec: VmSpec = {
  id: 'p1', paths: podPaths('/r', 'p1'), vcpus: 2, memoryMiB: 384,
  kernelPath: '/k/vmlinuz', initrdPath: '/c/initrd.cpio', kernelCmdline: 'console=ttyS0',
};

test('vc-vmm config: boot files, resources, and every socket in the pod directory', () => {
  const c = vmmConfig(spec);
  assert.is(c.kernel, '/k/vmlinuz');
  assert.is(c.initrd, '/c/initrd.cpio');
  assert.is(c.vcpus, 2);
  assert.is(c.memoryMiB, 384);
  assert.is(c.serialOutput, '/r/pods/p1/console.log');
  assert.is(c.controlSocket, '/r/pods/p1/vmm.sock');
  assert.equal(c.vsock, { guestCid: 3, udsPath: '/r/pods/p1/agent.sock' });
});

test('vc-vmm config: free read-only slots for container images, nothing attached at boot', () => {
  const blocks = vmmConfig(spec).blocks as Array<Record<string, unknown>>;
  assert.is(blocks.length, IMAGE_SLOTS);
  for (const b of blocks) assert.equal(b, { readOnly: true });
});

test('kernel command line: reset through the i8042 line ends the VMM; no PCI probing; a quiet console', () => {
  assert.is(kvmCmdline('console=ttyS0 panic=-1'), 'console=ttyS0 panic=-1 reboot=k pci=off quiet');
  assert.is(vmmConfig(spec).cmdline, 'console=ttyS0 reboot=k pci=off quiet');
});

test('cgroup limits follow the pod: its vCPUs, guest RAM plus VMM room, threads', () => {
  // The vCPUs' worth of CPU and half a CPU for the VMM's device thread.
  assert.equal(cgroupLimits({ vcpus: 2, memoryMiB: 384 }), { cpus: 2.5, memoryBytes: (384 + 64) * 1048576, pidsMax: 18 });
  // A template's source VM: room for its memory file's page cache as well.
  assert.equal(cgroupLimits({ vcpus: 1, memoryMiB: 256, snapshotDir: '/r/templates/t.creating' }).memoryBytes, (2 * 256 + 64) * 1048576);
});

test('cgroup name: the pod id plus a hash of its directory, within 63 characters', () => {
  const hash = (text: string) => (text === '/r/pods/p1' ? 'abcdef0123456789' : '0000000000000000');
  assert.is(cgroupName('p1', { dir: '/r/pods/p1' }, hash), 'p1-abcdef012345');
  const long = cgroupName('x'.repeat(63), { dir: '/elsewhere' }, hash);
  assert.ok(long.length <= 63, long);
  assert.match(long, /^x{44}-0{12}$/);
});

test('vc-vmm arguments: detached, logged, one --cgroup per hierarchy', () => {
  assert.equal(vmmArgs(podPaths('/r', 'p1'), ['/cg/cpu/vc/p1', '/cg/memory/vc/p1']), [
    'run', '--config', '/r/pods/p1/vmm.json', '--detach', '--log', '/r/pods/p1/vmm.log',
    '--cgroup', '/cg/cpu/vc/p1', '--cgroup', '/cg/memory/vc/p1',
  ]);
});

test('vc-vmm arguments of a template\'s source VM: the one directory its snapshot op may write, after the jail flags', () => {
  assert.equal(vmmArgs(podPaths('/r', 'p1'), ['/cg/p1'], ['--jail', '/j'], '/r/templates/t.creating').slice(-4), [
    '--jail', '/j', '--snapshot-dir', '/r/templates/t.creating',
  ]);
});

test('vc-vmm restore arguments: the snapshot\'s two files, then run\'s options (config, detach, log, cgroups, jail)', () => {
  const paths = podPaths('/r', 'p');
  const snapshot = { state: '/r/templates/t/state', memory: '/r/templates/t/memory' };
  assert.equal(vmmRestoreArgs(paths, snapshot, ['/sys/fs/cgroup/x'], ['--jail', '/j']), [
    'restore', '--state', snapshot.state, '--memory', snapshot.memory,
    '--config', paths.vmmConfig, '--detach', '--log', paths.vmmLog, '--cgroup', '/sys/fs/cgroup/x', '--jail', '/j',
  ]);
});

test('the snapshot op\'s answer: its file sizes, or HYPERVISOR_FAILED naming what is missing', () => {
  assert.equal(snapshotBytes({ state: 'stopped', bytes: { state: 14000, memory: 268439552 }, us: {} }), { state: 14000, memory: 268439552 });
  for (const bad of [{}, { bytes: { state: 1 } }, { bytes: { state: -1, memory: 2 } }, { bytes: { state: '1', memory: 2 } }, { bytes: { state: 1.5, memory: 2 } }]) {
    assert.throws(() => snapshotBytes(bad), (err: Error & { code?: string }) => err.code === 'HYPERVISOR_FAILED' && err.message.startsWith('vc-vmm snapshot: the answer has no bytes {state, memory}: '));
  }
});

test('why vc-vmm --detach gave no pid: its stderr, else how it ended, never just the command line', () => {
  const failed = (fields: Record<string, unknown>) => Object.assign(new Error('Command failed: /x/vc-vmm run --config c.json --detach'), fields);
  assert.is(detachFailure(failed({ code: 1 }), 'vc-vmm: config.memoryMiB: 0 is below 2\n', '', 30_000), 'vc-vmm: config.memoryMiB: 0 is below 2');
  assert.is(detachFailure(failed({ killed: true, signal: 'SIGTERM', code: null }), '', '', 30_000), 'vc-vmm did not answer within 30 s and was killed (SIGTERM)');
  assert.is(detachFailure(failed({ code: 3 }), '  \n', '', 30_000), 'vc-vmm exited with code 3 and printed nothing');
  assert.is(detachFailure(failed({ code: null, signal: 'SIGKILL' }), '', '', 30_000), 'vc-vmm was killed by SIGKILL');
  assert.is(detachFailure(null, '', '{"state":"running"}\n', 30_000), 'no pid in "{\\"state\\":\\"running\\"}\\n"');
  const aborted = Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
  assert.is(detachFailure(aborted, '', '', 30_000), 'The operation was aborted');
});

test('snapshot verify\'s answer: its one JSON line, or null for anything else', () => {
  assert.equal(snapshotCheckOf('{"ok":true,"vcpus":2,"ramBytes":268435456,"ramCrc":"0x1c2a03f4"}\n'), { vcpus: 2, ramBytes: 268435456, ramCrc: '0x1c2a03f4' });
  for (const bad of ['', 'not json', '{"ok":false,"vcpus":2,"ramBytes":4096,"ramCrc":"0x00000000"}', '{"ok":true,"vcpus":0,"ramBytes":4096,"ramCrc":"0x00000000"}',
    '{"ok":true,"vcpus":1,"ramBytes":4096,"ramCrc":"1c2a03f4"}', '{"ok":true,"vcpus":1,"ramBytes":4096.5,"ramCrc":"0x1c2a03f4"}', 'null']) {
    assert.is(snapshotCheckOf(bad), null, bad);
  }
});

test("how the VMM ended: its monitor's last line for that pid in the VMM log, or null", () => {
  const log = [
    'vc-vmm: VM stopped: requested',
    'vc-vmm monitor: the VMM (pid 41) exited with code 0',
    'vc-vmm monitor: the VMM (pid 42) was killed by signal 31 (SIGSYS): a system call its seccomp filter does not allow',
    'vc-vmm monitor: the VMM (pid 43) was killed by signal 9 (SIGKILL)',
    '',
  ].join('\n');
  assert.is(vmmEndFromLog(log, 42), 'killed by SIGSYS (a system call its seccomp filter does not allow)');
  assert.is(vmmEndFromLog(log, 43), 'killed by SIGKILL');
  assert.is(vmmEndFromLog(log, 41), 'exited with code 0');
  assert.is(vmmEndFromLog(log, 4), null, 'pid 4 is not pid 41');
  assert.is(vmmEndFromLog('', 42), null);
  // A VMM that ended on its own with a failure: its own "VM stopped" line comes with the exit code,
  // not one from an earlier run in the same log.
  const crashed = [
    'vc-vmm: VM stopped: guest-shutdown: the guest triple-faulted (rip=0xfff0 cr2=0x0 cr3=0x0)',
    'vc-vmm monitor: the VMM (pid 50) exited with code 3',
    'vc-vmm monitor: the VMM (pid 51) exited with code 1',
    '',
  ].join('\n');
  assert.is(vmmEndFromLog(crashed, 50), 'exited with code 3: VM stopped: guest-shutdown: the guest triple-faulted (rip=0xfff0 cr2=0x0 cr3=0x0)');
  assert.is(vmmEndFromLog(crashed, 51), 'exited with code 1', 'the line before belongs to pid 50');
});

test('the agent is reached over hybrid vsock on port 1024', () => {
  assert.equal(new KvmHypervisor().agentEndpoint(podPaths('/r', 'p1')), { kind: 'hybrid-vsock', path: '/r/pods/p1/agent.sock', port: AGENT_VSOCK_PORT });
  assert.is(AGENT_VSOCK_PORT, 1024);
});

test.run();
