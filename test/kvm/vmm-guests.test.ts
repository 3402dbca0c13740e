// The built-in VMM's KVM core on this host's /dev/kvm: the C++ kvm_* unit tests (one uvu test
// each), `vc-vmm caps`, and the freestanding test guest (native/testguest) booted through both
// loaders (bzImage and PVH ELF) by `vc-vmm run`. Each guest test asserts on the guest's serial
// output (PASS/FAIL lines it prints) and on what the host sees: files the guest wrote, vsock
// connections, control-socket answers, exit codes. Where this host cannot run the test guests,
// scripts/test.js runs this file in the nested harness's L1 (test/helpers/kvm-host.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/tmp.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { requireTestGuestHost } from '../helpers/kvm-host.js';
import { registerCppTests } from '../helpers/vmm-unit.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const release = join(root, 'build/Release');
const vcVmm = join(release, 'vc-vmm');
const unitTests = join(release, 'vmm-unit-tests');
const guests = { bzimage: join(release, 'testguest/vctest.bzImage'), pvh: join(release, 'testguest/vctest.elf') };
type Format = keyof typeof guests;

const dir = tempDir('vc-vmmg');
test.after(() => dir.remove());

requireTestGuestHost();
let tscKhz = 0;

test('vc-vmm, vmm-unit-tests and both test guest images are built', () => {
  for (const path of [vcVmm, unitTests, guests.bzimage, guests.pvh])
    assert.ok(existsSync(path), `${path} is missing; run npm run build:native`);
});

// --- The C++ kvm_* unit tests: one uvu test per `ok NAME` / `FAIL NAME: …` line. ---

registerCppTests('kvm_');

// --- Running the guest ---

interface GuestRun {
  spawnedAt: number;  // wall clock, ms
  code: number | null;
  signal: NodeJS.Signals | null;
  serial: string;
  stderr: string;
  ms: number;
}

interface GuestOptions {
  format: Format;
  test: string;
  cmdline?: string;
  config?: Record<string, unknown>;
  name: string;  // unique per run: names the run's directory
  // Runs while the VM runs (the serial log is at ctx.serialPath); the VM is stopped after it.
  during?: (ctx: { pid: number; serialPath: string; waitSerial: (re: RegExp) => Promise<string> }) => Promise<void>;
  timeoutMs?: number;
}

// The guest times its waits by the TSC; without the host's rate it assumes 2 GHz.
function tscArg() {
  return tscKhz > 0 ? `tsc_khz=${tscKhz}` : '';
}


function readIfExists(path: string) {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

async function runGuest(o: GuestOptions): Promise<GuestRun> {
  const runDir = join(dir.path, o.name);
  spawnSync('mkdir', ['-p', runDir]);
  const serialPath = join(runDir, 'serial.log');
  const config = {
    kernel: guests[o.format],
    cmdline: `vctest=${o.test} ${tscArg()} ${o.cmdline ?? ''}`.trim(),
    memoryMiB: 64,
    serialOutput: serialPath,
    ...o.config,
  };
  const configPath = join(runDir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const t0 = Date.now();
  const spawnedAt = performance.timeOrigin + performance.now();
  const child = spawn(vcVmm, ['run', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (err) => {
      stderr += `spawn ${vcVmm}: ${err.message}`;
      resolve({ code: null, signal: null });
    });
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
  let result: { code: number | null; signal: NodeJS.Signals | null };
  try {
    if (o.during) {
      await o.during({
        pid: child.pid ?? 0,
        serialPath,
        waitSerial: async (re) => {
          let m: RegExpExecArray | null = null;
          await waitFor(`${re} on the serial console`, () => (m = re.exec(readIfExists(serialPath))) !== null);
          return (m as RegExpExecArray | null)?.[0] ?? '';
        },
      });
    }
  } finally {
    result = await exited;
    clearTimeout(timeout);
  }
  return { ...result, spawnedAt, serial: readIfExists(serialPath), stderr, ms: Date.now() - t0 };
}

// The guest ran its test to the end with no FAIL line and the VMM stopped on the guest's reset.
function assertPassed(r: GuestRun, test: string, minPasses = 1) {
  const context = `serial:\n${r.serial}\nvc-vmm stderr:\n${r.stderr}`;
  assert.match(r.serial, new RegExp(`^vctest ${test} boot=`, 'm'), `the guest did not start ${test}\n${context}`);
  assert.not.match(r.serial, /^FAIL /m, context);
  assert.match(r.serial, /^vctest done failures=0$/m, context);
  assert.ok((r.serial.match(/^PASS /gm) ?? []).length >= minPasses, `fewer than ${minPasses} PASS lines\n${context}`);
  assert.is(r.code, 0, `vc-vmm exit ${r.code} (${r.signal})\n${context}`);
  assert.match(r.stderr, /VM stopped: guest-reset: i8042 reset line/, context);
}

function timing(r: GuestRun) {
  const m = /VM built (\d+) us -> first guest exit (\d+) us \(unix (\d+)\.(\d+)\)/.exec(r.stderr);
  if (!m) return `whole run ${r.ms} ms`;
  const firstExitMs = Number(m[3]) * 1000 + Number(m[4]) / 1000;
  return `spawn -> first guest exit ${(firstExitMs - r.spawnedAt).toFixed(1)} ms (VM built ${(Number(m[1]) / 1000).toFixed(1)} ms ` +
    `after main, first exit ${(Number(m[2]) / 1000).toFixed(1)} ms after main); whole run ${r.ms} ms`;
}

// Byte j of sector s of the host's disk images.
function patternedDisk(path: string, sectors: number) {
  const b = Buffer.alloc(sectors * 512);
  for (let s = 0; s < sectors; s++) for (let j = 0; j < 512; j++) b[s * 512 + j] = (s * 31 + j) & 0xff;
  writeFileSync(path, b);
}

function guestTest(name: string, fn: () => Promise<void>) {
  test(name, async () => {
    for (const path of [vcVmm, guests.bzimage, guests.pvh]) assert.ok(existsSync(path), `${path} is missing`);
    await fn();
  });
}

test('vc-vmm caps: this /dev/kvm has what the core needs', () => {
  const r = spawnSync(vcVmm, ['caps'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const caps = JSON.parse(r.stdout);
  assert.is(caps.usable, true);
  for (const cap of ['KVM_CAP_IRQCHIP', 'KVM_CAP_PIT2', 'KVM_CAP_IOEVENTFD', 'KVM_CAP_IRQFD', 'KVM_CAP_USER_MEMORY'])
    assert.ok(caps.capabilities[cap] > 0, cap);
  tscKhz = caps.tscKhz ?? 0;
  console.log(`  /dev/kvm: ${caps.flavor}, TSC ${tscKhz} kHz, ` +
    Object.entries(caps.capabilities as Record<string, number>).map(([k, v]) => `${k.replace('KVM_CAP_', '')}=${v}`).join(' '));
});

for (const format of ['bzimage', 'pvh'] as const) {
  guestTest(`${format}: the guest enters user mode and says ready`, async () => {
    const r = await runGuest({ format, test: 'hello', name: `hello-${format}` });
    assertPassed(r, 'hello', 0);
    assert.match(r.serial, /^ready$/m);
    console.log(`  hello/${format}: ${timing(r)}`);
  });

  guestTest(`${format}: boot parameters, memory map, command line, initrd and ACPI as the guest sees them`, async () => {
    const initrd = join(dir.path, `initrd-${format}.img`);
    const bytes = Buffer.alloc(12345, 0x5a);
    bytes.write('VCINITRD', 0);
    bytes.write('END!', bytes.length - 4);
    writeFileSync(initrd, bytes);
    const disk = join(dir.path, `boot-${format}.img`);
    patternedDisk(disk, 8);
    const r = await runGuest({
      format, test: 'boot', name: `boot-${format}`,
      cmdline: `expect_mem_mib=96 expect_cpus=2 expect_slots=3 expect_initrd=${bytes.length} marker=Zq9`,
      config: { memoryMiB: 96, vcpus: 2, initrd, rng: true, blocks: [{ path: disk }, { readOnly: true }] },
    });
    assertPassed(r, 'boot', 15);
    for (const what of ['memmap.ram_end', 'initrd.content', 'acpi.DSDT', 'acpi.dsdt_virtio', 'acpi.madt', 'acpi.rsdp_address'])
      assert.match(r.serial, new RegExp(`^PASS ${what.replace('.', '\\.')}$`, 'm'));
  });

  guestTest(`${format}: several vCPUs come up through INIT/SIPI with distinct APIC ids`, async () => {
    const cpus = format === 'pvh' ? 2 : 3;
    const r = await runGuest({ format, test: 'smp', name: `smp-${format}`, cmdline: `expect_cpus=${cpus}`, config: { vcpus: cpus } });
    assertPassed(r, 'smp', 3);
    assert.is((r.serial.match(/^smp: cpu apic=/gm) ?? []).length, cpus - 1);
  });

  guestTest(`${format}: virtio-vsock echoes both ways through the hybrid vsock socket`, async () => {
    const runDir = join(dir.path, `vsock-${format}`);
    spawnSync('mkdir', ['-p', runDir]);
    const uds = join(runDir, 'v.sock');
    const received: Buffer[] = [];
    const echo: Server = createServer((s) => s.on('data', (d) => { received.push(d); s.write(d); }));
    await new Promise<void>((r) => echo.listen(`${uds}_5001`, r));
    let reply = '';
    try {
      const r = await runGuest({
        format, test: 'vsock', name: `vsock-${format}`, cmdline: 'vsock_port=5001 vsock_listen=5000',
        config: { vsock: { guestCid: 9, udsPath: uds } },
        during: async ({ waitSerial }) => {
          await waitSerial(/^LISTEN 5000$/m);
          assert.is(statSync(uds).mode & 0o777, 0o600, 'the vsock socket is its owner\'s only');
          const s: Socket = createConnection(uds);
          let buf = '';
          s.on('data', (d) => (buf += d));
          await new Promise<void>((res, rej) => { s.on('connect', res); s.on('error', rej); });
          s.write('CONNECT 5000\n');
          await waitFor('OK from the VMM', () => /^OK \d+\n/.test(buf), 5000);
          buf = buf.replace(/^OK \d+\n/, '');
          s.write('Hello From The Host\n');
          await waitFor('the guest reply', () => buf.includes('\n'), 5000);
          reply = buf;
          s.end();
        },
      });
      assertPassed(r, 'vsock', 5);
      assert.match(r.serial, /^vsock: guest cid 9$/m);
    } finally {
      echo.close();
    }
    assert.is(reply, 'hELLO fROM tHE hOST\n');
    assert.is(Buffer.concat(received).length, 3000, 'the host echo server saw the guest bytes');
  });
}

guestTest('pvh: virtio-blk reads, writes, flushes and names the disk; the writes reach the file', async () => {
  const disk = join(dir.path, 'blk.img');
  patternedDisk(disk, 64);
  const r = await runGuest({
    format: 'pvh', test: 'blk', name: 'blk', cmdline: 'expect_sectors=64 expect_serial=vctest-disk',
    config: { blocks: [{ path: disk, serial: 'vctest-disk' }] },
  });
  assertPassed(r, 'blk', 7);
  const b = readFileSync(disk);
  for (const s of [4, 5]) for (let j = 0; j < 512; j++) {
    if (b[s * 512 + j] !== ((s * 17 + j * 3 + 1) & 0xff)) assert.unreachable(`sector ${s} byte ${j} not written by the guest`);
  }
  assert.is(b[3 * 512 + 7], (3 * 31 + 7) & 0xff, 'sectors the guest did not write are untouched');
});

guestTest('bzimage: malformed descriptor chains fail on their own request; the device and the VMM carry on', async () => {
  const disk = join(dir.path, 'bad.img');
  patternedDisk(disk, 8);
  const r = await runGuest({ format: 'bzimage', test: 'badchain', name: 'badchain', config: { blocks: [{ path: disk }] } });
  assertPassed(r, 'badchain', 7);
  for (const why of ['buffer outside guest memory', 'next index out of range', 'descriptor loop', 'device-readable descriptor after a device-writable one'])
    assert.match(r.stderr, new RegExp(why), `the VMM logged "${why}"`);
});

guestTest('pvh: virtio-rng gives entropy', async () => {
  const r = await runGuest({ format: 'pvh', test: 'rng', name: 'rng', config: { rng: true } });
  assertPassed(r, 'rng', 1);
});

guestTest('bzimage: exit costs on this host (user-mode loop, port I/O and MMIO exits)', async () => {
  const r = await runGuest({ format: 'bzimage', test: 'perf', name: 'perf', config: { rng: true } });
  assertPassed(r, 'perf', 1);
  const m = /^PERF loop_ps_per_iter=(\d+) pio_exit_ns=(\d+) mmio_exit_ns=(\d+)$/m.exec(r.serial);
  assert.ok(m, r.serial);
  console.log(`  perf: ${(Number(m[1]) / 1000).toFixed(2)} ns per loop iteration, port I/O exit ${(Number(m[2]) / 1000).toFixed(1)} us, ` +
    `MMIO exit ${(Number(m[3]) / 1000).toFixed(1)} us (from guest user mode)`);
});

// --- Hugepages: the pool is a host setting; as root the test lends itself pages and gives them back ---

function hugePagesFree() {
  return Number(/^HugePages_Free:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
}

guestTest('hugepages: guest RAM comes from the hugetlb pool, and a short pool is a clear error', async () => {
  const pages = 32;  // 64 MiB of 2 MiB pages
  const poolPath = '/proc/sys/vm/nr_hugepages';
  const before = Number(readFileSync(poolPath, 'utf8'));
  let raised = false;
  if (hugePagesFree() < pages) {
    if (process.getuid?.() !== 0) {
      console.log(`SKIP hugepages: ${hugePagesFree()} free 2 MiB pages, ${pages} needed, and not root to reserve them`);
      return;
    }
    writeFileSync(poolPath, String(before + pages - hugePagesFree()));
    raised = true;
  }
  try {
    if (hugePagesFree() < pages) {
      console.log(`SKIP hugepages: the kernel found only ${hugePagesFree()} free 2 MiB pages`);
      return;
    }
    let huge2m = false;
    const r = await runGuest({
      format: 'pvh', test: 'hotplug', name: 'hugepages',
      config: { hugepages: true, controlSocket: join(dir.path, 'huge.sock'), blocks: [{ readOnly: true }] },
      during: async ({ pid, waitSerial }) => {
        await waitSerial(/^HOTPLUG waiting/m);
        huge2m = /^KernelPageSize:\s+2048 kB$/m.test(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
        const ctl = await Control.connect(join(dir.path, 'huge.sock'));
        assert.is((await ctl.request({ op: 'status' })).status.hugepages, true);
        await ctl.request({ op: 'stop' });
        ctl.close();
      },
    });
    assert.is(r.code, 0, r.stderr);
    assert.ok(huge2m, 'the VMM maps guest RAM with 2 MiB pages');
    const tooBig = join(dir.path, 'huge-too-big.json');
    writeFileSync(tooBig, JSON.stringify({ kernel: guests.pvh, memoryMiB: 3072, hugepages: true }));
    const e = spawnSync(vcVmm, ['run', '--config', tooBig], { encoding: 'utf8' });
    assert.is(e.status, 1, e.stderr);
    assert.match(e.stderr, /mmap of 3072 MiB from 2 MiB hugepages: .*1536 free 2 MiB pages.*nr_hugepages/);
  } finally {
    if (raised) writeFileSync(poolPath, String(before));
  }
});

// --- vc-vmm as a detached process with its control socket ---

class Control {
  private buf = '';
  private waiters: ((line: string) => void)[] = [];
  private constructor(private readonly sock: Socket) {
    sock.on('data', (d) => {
      this.buf += d;
      let nl;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        this.waiters.shift()?.(line);
      }
    });
  }
  static async connect(path: string) {
    const sock = createConnection(path);
    await new Promise<void>((res, rej) => { sock.on('connect', res); sock.on('error', rej); });
    return new Control(sock);
  }
  raw(line: string): Promise<any> {
    return new Promise((resolve) => {
      this.waiters.push((l) => resolve(JSON.parse(l)));
      this.sock.write(line + '\n');
    });
  }
  request(req: Record<string, unknown>) { return this.raw(JSON.stringify(req)); }
  close() { this.sock.end(); }
}

// A detached VMM is reparented to PID 1, which may reap it late: a zombie counts as gone.
function alive(pid: number) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

guestTest('detached vc-vmm: status, pause/resume, attachBlock into a free slot while the guest waits, socket removed at exit', async () => {
  const runDir = join(dir.path, 'ctl');
  spawnSync('mkdir', ['-p', runDir]);
  const disk = join(runDir, 'hot.img');
  patternedDisk(disk, 16);
  const ctlPath = join(runDir, 'ctl.sock'), serialPath = join(runDir, 'serial.log'), logPath = join(runDir, 'vmm.log');
  writeFileSync(join(runDir, 'config.json'), JSON.stringify({
    kernel: guests.bzimage, memoryMiB: 64, serialOutput: serialPath, controlSocket: ctlPath,
    cmdline: `vctest=hotplug expect_sectors=16 expect_serial=hot-disk ${tscArg()}`,
    blocks: [{ readOnly: true }],
  }));
  const t0 = Date.now();
  const started = spawnSync(vcVmm, ['run', '--config', join(runDir, 'config.json'), '--detach', '--log', logPath], { encoding: 'utf8' });
  assert.is(started.status, 0, started.stderr);
  const { pid } = JSON.parse(started.stdout) as { pid: number };
  console.log(`  detached start: ${Date.now() - t0} ms until vc-vmm --detach returned with the VM running`);
  const ctl = await Control.connect(ctlPath);
  try {
    await waitFor('the guest to wait for a disk', () => /^HOTPLUG waiting slot 0$/m.test(readIfExists(serialPath)));
    const st = await ctl.request({ op: 'status', id: 7 });
    assert.is(st.ok, true);
    assert.is(st.id, 7);
    assert.is(st.status.state, 'running');
    assert.is(st.status.bootFormat, 'bzimage');
    assert.equal(st.status.slots, [{ slot: 0, device: 'blk', address: 0xd0000000, gsi: 5, readOnly: true, attached: false }]);
    assert.equal(statSync(ctlPath).mode & 0o777, 0o600);
    assert.equal([statSync(serialPath).mode & 0o777, statSync(logPath).mode & 0o777], [0o600, 0o600], 'console and log: the owner\'s only');

    // Paused, the guest (polling the slot's capacity over MMIO) makes no exits at all.
    assert.equal(await ctl.request({ op: 'pause' }), { ok: true, state: 'paused' });
    const a = (await ctl.request({ op: 'status' })).status;
    await sleep(100);
    const b = (await ctl.request({ op: 'status' })).status;
    assert.is(b.state, 'paused');
    assert.is(b.exits.mmio, a.exits.mmio, 'no MMIO exits while paused');
    assert.equal(await ctl.request({ op: 'resume' }), { ok: true, state: 'running' });
    await sleep(50);
    assert.ok((await ctl.request({ op: 'status' })).status.exits.mmio > b.exits.mmio, 'the guest runs again');

    // Errors name what is wrong; none of them disturbs the VM.
    assert.equal((await ctl.request({ op: 'attachBlock', path: join(runDir, 'missing.img'), readOnly: true })).error.code, 'ATTACH_FAILED');
    const rw = await ctl.request({ op: 'attachBlock', path: disk });
    assert.match(rw.error.message, /no read-write block slot/);
    assert.equal((await ctl.request({ op: 'launch' })).error.code, 'UNKNOWN_OP');
    assert.equal((await ctl.raw('{"op": ')).error.code, 'BAD_REQUEST');
    assert.equal((await ctl.request({ op: 'attachBlock' })).error.code, 'BAD_REQUEST');
    assert.equal((await ctl.request({ op: 'detachBlock' })).error.code, 'BAD_REQUEST');
    const notThere = await ctl.request({ op: 'detachBlock', serial: 'hot-disk' });
    assert.is(notThere.error.code, 'DETACH_FAILED');
    assert.match(notThere.error.message, /no attached disk has serial "hot-disk"/);

    assert.equal(await ctl.request({ op: 'attachBlock', path: disk, readOnly: true, serial: 'hot-disk' }), { ok: true, slot: 0 });
    await waitFor('the VMM to exit', () => !alive(pid), 10_000);
  } finally {
    ctl.close();
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  const serial = readIfExists(serialPath);
  assert.not.match(serial, /^FAIL /m, serial);
  for (const what of ['hotplug.capacity', 'hotplug.config_generation', 'hotplug.read', 'hotplug.get_id'])
    assert.match(serial, new RegExp(`^PASS ${what.replace('.', '\\.')}$`, 'm'), serial);
  assert.match(readIfExists(logPath), /VM stopped: guest-reset/);
  assert.not.ok(existsSync(ctlPath), 'the control socket is removed when the VMM exits');
});

guestTest('a running VM stops cleanly on the control socket\'s stop and on SIGTERM', async () => {
  for (const how of ['stop', 'SIGTERM'] as const) {
    const r = await runGuest({
      format: 'pvh', test: 'hotplug', name: `stop-${how}`,
      config: { controlSocket: join(dir.path, `stop-${how}.sock`), blocks: [{ readOnly: true }] },
      during: async ({ pid, waitSerial }) => {
        await waitSerial(/^HOTPLUG waiting/m);
        if (how === 'stop') {
          const ctl = await Control.connect(join(dir.path, `stop-${how}.sock`));
          assert.equal(await ctl.request({ op: 'stop' }), { ok: true, stopping: true });
          ctl.close();
        } else {
          process.kill(pid, 'SIGTERM');
        }
      },
    });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, how === 'stop' ? /VM stopped: requested: control socket stop/ : /VM stopped: signal: signal Terminated/);
  }
});

guestTest('vc-vmm run refuses bad configs and unloadable kernels with a message, leaving nothing behind', async () => {
  const bad = join(dir.path, 'bad.json');
  const cases: [unknown, number, RegExp][] = [
    [{ kernel: guests.pvh, vcpus: 0 }, 2, /config\.vcpus must be an integer in 1\.\.254, not 0/],
    [{ kernel: guests.pvh, memoryMiB: 64, disks: [] }, 2, /unknown field "disks"/],
    [{ kernel: join(dir.path, 'nope') }, 1, /config\.kernel .*nope: No such file or directory/],
    [{ kernel: bad }, 1, /bzImage: .* \(and not an ELF vmlinux\)/],
    [{ kernel: guests.pvh, rng: true, blocks: [{ path: join(dir.path, 'nope.img') }] }, 1, /config\.blocks\[0\]: .*nope\.img: No such file or directory/],
  ];
  for (const [config, status, message] of cases) {
    writeFileSync(bad, JSON.stringify(config));
    const r = spawnSync(vcVmm, ['run', '--config', bad], { encoding: 'utf8' });
    assert.is(r.status, status, `${JSON.stringify(config)}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  // Detached, the failure comes back to the caller and no VMM process stays behind.
  const ctlPath = join(dir.path, 'bad-detach.sock');
  writeFileSync(bad, JSON.stringify({ kernel: join(dir.path, 'nope'), controlSocket: ctlPath }));
  const r = spawnSync(vcVmm, ['run', '--config', bad, '--detach'], { encoding: 'utf8' });
  assert.is(r.status, 1);
  assert.match(r.stderr, /nope: No such file or directory/);
  assert.not.ok(existsSync(ctlPath));
});

test.run();
