// The built-in VMM in-process through the addon's Vm handle, running the freestanding test guest
// on this host's /dev/kvm (or in L1, where this host has none): the same core as vc-vmm, without a
// process per VM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native, packageRoot } from '../../src/native.js';
import { tscKhzFromCpuinfo } from '../../src/hypervisor/qemu/command.js';
import { requireTestGuestHost } from '../helpers/kvm-host.js';
import { tempDir } from '../helpers/tmp.js';

requireTestGuestHost();

const guest = join(packageRoot, 'build', 'Release', 'testguest', 'vctest.bzImage');
const tsc = tscKhzFromCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));

function config(serialOutput: string, testName: string, extra: object = {}): string {
  return JSON.stringify({ kernel: guest, memoryMiB: 64, serialOutput, cmdline: `vctest=${testName}${tsc ? ` tsc_khz=${tsc}` : ''}`, ...extra });
}

test('the test guest image is built', () => {
  assert.ok(existsSync(guest), `${guest} is missing; run npm run build:native`);
});

test('a VM runs in-process: boots, passes its checks, and ends on its own', async () => {
  const tmp = tempDir('vcvm');
  try {
    const serial = join(tmp.path, 'serial.log');
    const started = performance.now();
    const vm = new (native().Vm)(config(serial, 'hello'));
    const built = performance.now();
    vm.start();
    const end = await vm.wait();
    const text = readFileSync(serial, 'utf8');
    assert.match(text, /^vctest hello boot=/m, text);
    assert.not.match(text, /^FAIL /m, text);
    assert.match(text, /^vctest done failures=0$/m, text);
    assert.is(end.reason, 'guest-reset', JSON.stringify(end));
    const status = JSON.parse(vm.status()) as { state: string };
    assert.is(status.state, 'stopped');
    console.log(`  in-process: VM built in ${(built - started).toFixed(2)} ms, whole run ${(performance.now() - started).toFixed(1)} ms`);
  } finally {
    tmp.remove();
  }
});

test('pause, resume and stop from the host; status reflects each', async () => {
  const tmp = tempDir('vcvm');
  try {
    // "hotplug" waits (20 s) for a disk to arrive in its empty slot, so it runs until stopped;
    // without a slot it would fail at once and end the VM while the test still expects it running.
    const vm = new (native().Vm)(config(join(tmp.path, 'serial.log'), 'hotplug', { blocks: [{ readOnly: true }] }));
    vm.start();
    vm.pause();
    assert.is((JSON.parse(vm.status()) as { state: string }).state, 'paused');
    vm.resume();
    assert.is((JSON.parse(vm.status()) as { state: string }).state, 'running');
    vm.stop();
    const end = await vm.wait();
    assert.is(end.reason, 'requested');
    assert.is((JSON.parse(vm.status()) as { state: string }).state, 'stopped');
  } finally {
    tmp.remove();
  }
});

test('a bad config is an error naming the field, before any VM exists', () => {
  assert.throws(() => new (native().Vm)(JSON.stringify({ kernel: guest, vcpus: 0 })), /config\.vcpus must be an integer in 1\.\.254, not 0/);
  assert.throws(() => new (native().Vm)('{'), /JSON|config/i);
  assert.throws(() => new (native().Vm)(JSON.stringify({ kernel: '/nonexistent/kernel' })), /nonexistent\/kernel/);
});

test.run();
