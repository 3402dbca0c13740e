// What the benchmarks run: the built-in VMM, the freestanding test guest (native/testguest) and
// QEMU's command line for the same guest, plus a description of the host.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/native.js';
import type { HostInfo } from './results.js';
import { sleep, track, untrack, wallNowMs } from './proc.js';

export const buildDir = join(packageRoot, 'build', 'Release');
export const paths = {
  vcVmm: join(buildDir, 'vc-vmm'),
  kvmFloor: join(buildDir, 'bench-kvm-floor'),
  /** The PVH ELF: both vc-vmm and QEMU boot it, so the two run the very same file. */
  guestElf: join(buildDir, 'testguest', 'vctest.elf'),
  guestBzImage: join(buildDir, 'testguest', 'vctest.bzImage'),
  qemu: 'qemu-system-x86_64',
};

export type QemuAccel = 'kvm' | 'tcg';

/**
 * QEMU for the test guest: microvm without the legacy PIT/PIC/RTC (the guest polls and never takes
 * an interrupt), the PVH ELF as -kernel, COM1 on stdout, an i8042 so that the guest's reset ends
 * QEMU (-no-reboot), and optionally the debug port 0x80 (isa-debugcon) on a Unix socket we listen
 * on: its first byte is the guest's first instruction that reaches a device. On this PVM /dev/kvm `-cpu host` fails to set
 * IA32_ARCH_CAPABILITIES (MSR 0x10a), so the KVM CPU model drops that feature.
 */
export function qemuArgs(o: { accel: QemuAccel; kernel: string; cmdline: string; memoryMiB: number; debugconSocket?: string }): string[] {
  return [
    '-M', 'microvm,pit=off,pic=off,rtc=off',
    '-accel', o.accel,
    ...(o.accel === 'kvm' ? ['-cpu', 'host,-arch-capabilities'] : []),
    '-m', String(o.memoryMiB),
    '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-kernel', o.kernel,
    '-append', o.cmdline,
    '-serial', 'stdio',
    '-device', 'i8042',
    '-no-reboot',
    ...(o.debugconSocket ? ['-chardev', `socket,id=dbg,path=${o.debugconSocket}`, '-device', 'isa-debugcon,iobase=0x80,chardev=dbg'] : []),
  ];
}

/** The built-in VMM's JSON config for the same guest. */
export function vmmConfig(o: { kernel: string; cmdline: string; memoryMiB: number; serialOutput?: string }): Record<string, unknown> {
  return { kernel: o.kernel, cmdline: o.cmdline, memoryMiB: o.memoryMiB, vcpus: 1, ...(o.serialOutput ? { serialOutput: o.serialOutput } : {}) };
}

export function qemuVersion(): string | null {
  const r = spawnSync(paths.qemu, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return r.stdout.split('\n')[0]!.trim();
}

export function kvmFlavor(): string {
  if (!existsSync(paths.vcVmm)) return 'unknown (vc-vmm not built)';
  const r = spawnSync(paths.vcVmm, ['caps'], { encoding: 'utf8' });
  try {
    const caps = JSON.parse(r.stdout) as { flavor?: string; usable?: boolean };
    return `${caps.flavor ?? 'unknown'}${caps.usable === false ? ' (not usable)' : ''}`;
  } catch {
    return `unusable: ${(r.stdout + r.stderr).trim().split('\n')[0] ?? ''}`;
  }
}

export function hostInfo(): HostInfo {
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  return {
    cpuModel,
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    kvmFlavor: kvmFlavor(),
    qemuVersion: qemuVersion(),
    node: process.versions.node,
    loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export interface OneShot {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall-clock ms just before spawn(), at the first byte on the side socket (if asked for), at `marker` on stdout. */
  spawnedAtMs: number;
  socketAtMs: number | null;
  markerAtMs: number | null;
  timedOut: boolean;
}

/**
 * Runs a command to its end, timing from just before spawn() to `marker` on its stdout and, with
 * `socketPath`, to the first byte the command sends to a Unix socket we listen on (QEMU connects
 * its debugcon chardev there). `stdin` is written and closed.
 */
export async function runTimed(cmd: string, args: string[], o: { stdin?: string; marker?: string; socketPath?: string; timeoutMs: number }): Promise<OneShot> {
  let socketAtMs: number | null = null;
  let server: Server | null = null;
  // The socket's last events can come after the child's 'close': wait for its connection to end.
  let connEnded: Promise<void> = Promise.resolve();
  if (o.socketPath) {
    rmSync(o.socketPath, { force: true });
    server = createServer((conn) => {
      connEnded = new Promise<void>((r) => conn.once('close', () => r()));
      conn.on('data', () => { if (socketAtMs === null) socketAtMs = wallNowMs(); });
      conn.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(o.socketPath, () => resolve());
    });
  }
  try {
    const shot = await new Promise<OneShot>((resolve) => {
      const spawnedAtMs = wallNowMs();
      const child = spawn(cmd, args, { stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      track(child.pid);
      let stdout = '', stderr = '', markerAtMs: number | null = null, timedOut = false;
      if (o.stdin !== undefined) child.stdin!.end(o.stdin);
      child.stdout!.on('data', (d) => {
        stdout += d;
        if (markerAtMs === null && o.marker && stdout.includes(o.marker)) markerAtMs = wallNowMs();
      });
      child.stderr!.on('data', (d) => { stderr += d; });
      const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, o.timeoutMs);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        untrack(child.pid);
        resolve({ code, signal, stdout, stderr, spawnedAtMs, socketAtMs: null, markerAtMs, timedOut });
      });
      child.once('error', (err) => { stderr += String(err); });
    });
    if (server) await Promise.race([connEnded, sleep(1000)]);
    return { ...shot, socketAtMs };
  } finally {
    if (server) {
      server.close();
      rmSync(o.socketPath!, { force: true });
    }
  }
}
