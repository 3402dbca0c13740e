// The idle test guest (native/testguest, vctest=idle) that the memory and density benchmarks hold
// by the hundred: it says ready, then halts at CPL0 with interrupts off, so it costs the host no CPU
// while it waits, and the VMM's stop (SIGTERM here) still ends it cleanly. Through both loaders.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTestGuestHost } from '../helpers/kvm-host.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const release = join(root, 'build/Release');
const vcVmm = join(release, 'vc-vmm');
const guests = { bzimage: join(release, 'testguest/vctest.bzImage'), pvh: join(release, 'testguest/vctest.elf') };

requireTestGuestHost();

/** utime + stime of a process (all its threads), in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

interface Run {
  code: number | null;
  serial: string;
  stderr: string;
  ticksWhileIdle: number;
}

async function runIdle(kernel: string, cmdline: string, idleMs: number): Promise<Run> {
  const child = spawn(vcVmm, ['run', '--config', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(JSON.stringify({ kernel, cmdline, memoryMiB: 32, serialOutput: '-' }));
  let serial = '', stderr = '';
  child.stdout.on('data', (d) => (serial += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20000);
  try {
    const deadline = Date.now() + 10000;
    while (!serial.includes('ready') && Date.now() < deadline && child.exitCode === null) await sleep(5);
    assert.match(serial, /ready/, `no "ready" from the idle guest; stderr: ${stderr}`);
    const before = cpuTicks(child.pid!);
    await sleep(idleMs);
    const ticksWhileIdle = cpuTicks(child.pid!) - before;
    child.kill('SIGTERM');
    const code = await exited;
    return { code, serial, stderr, ticksWhileIdle };
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

for (const [format, kernel] of Object.entries(guests)) {
  test(`${format}: vctest=idle says ready, halts without using the CPU, and stops on SIGTERM`, async () => {
    assert.ok(existsSync(kernel), `${kernel} is missing; run npm run build:native`);
    const r = await runIdle(kernel, 'vctest=idle', 500);
    assert.match(r.serial, /^vctest idle\nready\n$/, r.serial);
    // 500 ms of a spinning vCPU would be ~50 ticks at 100 Hz; a halted one is 0 (allow some noise).
    assert.ok(r.ticksWhileIdle <= 5, `the idle VMM used ${r.ticksWhileIdle} ticks of CPU in 500 ms`);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /VM stopped: signal/);
    assert.match(r.stderr, /first guest exit [1-9]\d* us/);
  });
}

test('vctest=idle elsewhere on the command line spins in user mode instead (and still stops)', async () => {
  const r = await runIdle(guests.bzimage, 'tsc_khz=1 vctest=idle', 300);
  assert.match(r.serial, /^vctest idle boot=bzimage\nready\n$/, r.serial);
  assert.ok(r.ticksWhileIdle > 5, `expected a spinning vCPU, got ${r.ticksWhileIdle} ticks`);
  assert.is(r.code, 0, r.stderr);
});

test.run();
