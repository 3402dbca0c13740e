// QEMU behind the Hypervisor interface: one detached qemu-system-x86_64 per pod (launch.ts), QMP
// for control, the agent on N virtio-serial ports whose host ends are Unix sockets in the pod
// directory (agent-ports.ts). As root it drops to an unprivileged user once its devices are open
// (-runas; ../unprivileged.ts), so disks hot-plugged later reach it as open files (`add-fd`).
import { access, chmod, constants, open, readFile, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { VcError } from '../../errors.js';
import { isSameProcess, processStartTime, signalProcess, waitForExit } from '../../host/process.js';
import { reapPod } from '../../host/reap.js';
import type { StepHook } from '../../crash-points.js';
import { native, type KvmProbe } from '../../native.js';
import type { PodPaths } from '../../store/paths.js';
import type { PodResources, VmmRecord } from '../../model/records.js';
import { inNetns, type AgentEndpoint, type Hypervisor, type HypervisorLimits, type VmSpec } from '../types.js';
import { agentPortCount, qemuAgentPorts, QEMU_AGENT_PORTS } from './agent-ports.js';
import { unprivilegedUser } from '../unprivileged.js';
import { qemuArgs, tscKhzFromCpuinfo, type QemuAccel } from './command.js';
import { describeExit, launchDetached, recordedExit, recordUnexpectedExit, waitUntilServing } from './launch.js';
import { QmpClient } from './qmp.js';

/** QEMUs this process is stopping or reaping: their end is no news (recordUnexpectedExit). */
const endingOnPurpose = new Set<number>();

export class QemuHypervisor implements Hypervisor {
  readonly kind = 'qemu' as const;
  /** QEMU sets no bound below the pod config's own; images are SCSI disks hot-plugged on one bus. */
  readonly limits: HypervisorLimits = { memoryMiB: { min: 0, max: Infinity }, vcpus: { min: 0, max: Infinity }, diskSlots: null };

  constructor(private readonly binary = process.env.VC_QEMU ?? 'qemu-system-x86_64') {}

  async check(): Promise<void> {
    await this.resolveBinary();
  }

  /**
   * kvm only where KVM runs stock guests; PVM's /dev/kvm cannot boot a stock kernel. QEMU opens
   * /dev/kvm itself, so a `$VC_KVM_DEVICE` naming another device means TCG.
   */
  accel(probe: KvmProbe = native().kvmProbe()): QemuAccel {
    return probe.stockGuests && probe.device === '/dev/kvm' ? 'kvm' : 'tcg';
  }

  async start(spec: VmSpec, options: { signal?: AbortSignal; step?: StepHook } = {}): Promise<VmmRecord> {
    const { paths } = spec;
    const binary = await this.resolveBinary();
    const accel = this.accel();
    const runAs = unprivilegedUser(process.env, process.getuid?.() === 0);
    const tscKhz = accel === 'tcg' ? tscKhzFromCpuinfo(await readFile('/proc/cpuinfo', 'utf8').catch(() => '')) : undefined;
    await this.cleanup(spec.paths);
    try {
      const [command, args] = inNetns(spec.network, binary, qemuArgs(spec, accel, { hostTscKhz: tscKhz, runAs }));
      const launch = await launchDetached(command, args, qemuLog(paths));
      void launch.exited.then((exit) => {
        if (!endingOnPurpose.delete(launch.pid)) recordUnexpectedExit(qemuExitFile(paths), launch.pid, exit);
      });
      try {
        await waitUntilServing(paths.qmpSocket, launch, qemuLog(paths), { timeoutMs: 60_000, signal: options.signal });
      } catch (err) {
        endingOnPurpose.add(launch.pid);
        signalProcess(launch.pid, 'SIGKILL');
        throw err instanceof VcError && err.code === 'HYPERVISOR_FAILED'
          ? new VcError('HYPERVISOR_FAILED', `qemu failed to start pod ${spec.id}: ${err.message}`, { cause: err })
          : err;
      }
      const pid = Number((await readFile(paths.pidFile, 'utf8')).trim());
      if (pid !== launch.pid) throw new VcError('HYPERVISOR_FAILED', `qemu's pid file ${paths.pidFile} names ${pid}, not the started qemu (pid ${launch.pid})`);
      await ownerOnly([paths.qmpSocket, paths.console, paths.pidFile, ...qemuAgentPorts(paths, agentPortCount(spec.memoryMiB)).map((p) => p.socket)]);
      options.step?.('qemu-serving');
      const startTime = await processStartTime(pid);
      return { pid, startTime, accel, startedAt: new Date().toISOString(), agentPorts: agentPortCount(spec.memoryMiB) };
    } catch (err) {
      await this.reap(spec.id, spec.paths); // a QEMU that was started, by its pid file or command line
      throw err;
    }
  }

  /** How the pod's QEMU ended, when the process that started it saw it end (and why QEMU said, from its log). */
  async exitDetail(vmm: VmmRecord, paths: PodPaths): Promise<string | null> {
    const exit = await recordedExit(qemuExitFile(paths), vmm.pid);
    const said = (await readFile(qemuLog(paths), 'utf8').catch(() => '')).trim().split('\n').pop() ?? '';
    if (!exit) return said || null;
    return `${describeExit(exit)}${exit.signal === 'SIGSYS' ? ' (a system call its -sandbox forbids)' : ''}${said ? `; it said: ${said}` : ''}`;
  }

  /** With the VMM's files, the agent ports' lease files: reap runs when the VM is gone, so any client still holding one holds a dead port. */
  resources(_id: string, paths: PodPaths): PodResources {
    const leases = qemuAgentPorts(paths, QEMU_AGENT_PORTS).map((port) => port.lease);
    return { marker: paths.qmpSocket, pidFile: paths.pidFile, files: [...qemuFiles(paths), ...leases] };
  }

  async reap(id: string, paths: PodPaths, vmm?: VmmRecord, options: { dryRun?: boolean } = {}): Promise<string[]> {
    if (vmm && !options.dryRun) endingOnPurpose.add(vmm.pid);
    return reapPod(this.resources(id, paths), vmm ? [{ pid: vmm.pid, startTime: vmm.startTime }] : [], options);
  }

  agentEndpoint(paths: PodPaths, vmm?: VmmRecord): AgentEndpoint {
    const ports = qemuAgentPorts(paths, vmm?.agentPorts ?? QEMU_AGENT_PORTS);
    return { kind: 'leased-ports', ports: ports.map(({ socket, lease }) => ({ socket, lease })) };
  }

  async isRunning(vmm: VmmRecord, paths: PodPaths): Promise<boolean> {
    return isSameProcess(vmm.pid, vmm.startTime, paths.qmpSocket);
  }

  async vmState(vmm: VmmRecord, paths: PodPaths): Promise<string | null> {
    if (!(await this.isRunning(vmm, paths))) return null;
    try {
      const qmp = await QmpClient.connect(paths.qmpSocket, 2000);
      try {
        const result = (await qmp.execute('query-status')) as { status?: unknown };
        return typeof result?.status === 'string' ? result.status : null;
      } finally {
        qmp.close();
      }
    } catch {
      return null;
    }
  }

  /**
   * The disk reaches QEMU as a file the library opened (QMP `add-fd` into an fd set named after the
   * serial, then `/dev/fdset/N`): a QEMU that dropped root cannot open it by path, and one that kept
   * it has no need to. The set stays until detachDisk removes it.
   */
  async attachDisk(vmm: VmmRecord, paths: PodPaths, disk: { serial: string; path: string }): Promise<void> {
    await this.withQmp(vmm, paths, async (qmp) => {
      const node = `img-${disk.serial}`;
      const file = await open(disk.path, 'r').catch((err: NodeJS.ErrnoException) => {
        throw new VcError('HYPERVISOR_FAILED', `cannot open disk ${disk.path} for qemu: ${err.message}`, { cause: err });
      });
      let fdset: number;
      try {
        const added = (await qmp.executeWithFd('add-fd', { opaque: fdsetOpaque(disk.serial) }, file.fd)) as { 'fdset-id'?: unknown };
        if (typeof added?.['fdset-id'] !== 'number') throw new VcError('HYPERVISOR_FAILED', `QMP add-fd answered no fdset-id: ${JSON.stringify(added)}`);
        fdset = added['fdset-id'];
      } finally {
        await file.close();
      }
      try {
        await qmp.execute('blockdev-add', {
          driver: 'raw', 'node-name': node, 'read-only': true,
          file: { driver: 'file', filename: `/dev/fdset/${fdset}`, 'read-only': true },
        });
        try {
          // On the pod's virtio-scsi bus; QEMU picks a free SCSI id. The guest finds it by serial.
          await qmp.execute('device_add', { driver: 'scsi-hd', id: `disk-${disk.serial}`, drive: node, bus: 'scsi0.0', serial: disk.serial });
        } catch (err) {
          await qmp.execute('blockdev-del', { 'node-name': node }).catch(() => {});
          throw err;
        }
      } catch (err) {
        await qmp.execute('remove-fd', { 'fdset-id': fdset }).catch(() => {});
        throw err;
      }
    });
  }

  async detachDisk(vmm: VmmRecord, paths: PodPaths, serial: string): Promise<void> {
    await this.withQmp(vmm, paths, async (qmp) => {
      await qmp.execute('device_del', { id: `disk-${serial}` }).catch(() => {});
      // SCSI unplug completes asynchronously; the block node can go once the device has.
      for (let attempt = 0; ; attempt++) {
        try {
          await qmp.execute('blockdev-del', { 'node-name': `img-${serial}` });
          break;
        } catch (err) {
          if (attempt >= 50) throw err;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      const sets = (await qmp.execute('query-fdsets')) as Array<{ 'fdset-id': number; fds: Array<{ opaque?: string }> }>;
      for (const set of sets.filter((s) => s.fds.some((fd) => fd.opaque === fdsetOpaque(serial)))) {
        await qmp.execute('remove-fd', { 'fdset-id': set['fdset-id'] });
      }
    });
  }

  private async withQmp<T>(vmm: VmmRecord, paths: PodPaths, body: (qmp: QmpClient) => Promise<T>): Promise<T> {
    if (!(await this.isRunning(vmm, paths))) throw new VcError('HYPERVISOR_FAILED', `qemu (pid ${vmm.pid}) is not running`);
    const qmp = await QmpClient.connect(paths.qmpSocket, 5000);
    try {
      return await body(qmp);
    } finally {
      qmp.close();
    }
  }

  async stop(vmm: VmmRecord, paths: PodPaths, options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!(await this.isRunning(vmm, paths))) return;
    endingOnPurpose.add(vmm.pid);
    try {
      const qmp = await QmpClient.connect(paths.qmpSocket, Math.min(timeoutMs, 2000));
      try {
        await qmp.execute('quit').catch(() => {}); // QEMU may close the socket before answering
      } finally {
        qmp.close();
      }
    } catch {
      // QMP unusable: fall through to signals.
    }
    if (await waitForExit(vmm.pid, timeoutMs)) return;
    signalProcess(vmm.pid, 'SIGKILL');
    if (!(await waitForExit(vmm.pid, 5000))) {
      throw new VcError('HYPERVISOR_FAILED', `qemu (pid ${vmm.pid}) did not exit after SIGKILL`);
    }
  }

  async pause(vmm: VmmRecord, paths: PodPaths): Promise<void> {
    await this.withQmp(vmm, paths, (qmp) => qmp.execute('stop'));
  }

  async resume(vmm: VmmRecord, paths: PodPaths): Promise<void> {
    await this.withQmp(vmm, paths, (qmp) => qmp.execute('cont'));
  }

  /** Before a start: what an earlier QEMU of the pod left (reap has removed the rest). */
  async cleanup(paths: PodPaths): Promise<void> {
    await Promise.all(qemuFiles(paths).map((p) => rm(p, { force: true })));
  }

  private async resolveBinary(): Promise<string> {
    const candidates = this.binary.includes('/')
      ? [this.binary]
      : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).filter(Boolean).map((dir) => join(dir, this.binary));
    for (const candidate of candidates) {
      try {
        await access(candidate, constants.X_OK);
        return candidate;
      } catch {
        // try the next one
      }
    }
    throw new VcError(
      'HYPERVISOR_UNAVAILABLE',
      `qemu: ${this.binary} not found (looked in ${candidates.length === 1 ? candidates[0] : 'PATH'}); ` +
        'install qemu-system-x86 (Debian, Ubuntu) or qemu-system-x86-core (Fedora), or set VC_QEMU to its path',
    );
  }
}

/**
 * QEMU makes its sockets, console log and pid file under the umask it was started with, so they
 * are made the owner's only here, once it serves its monitor and before start returns: nobody is
 * handed the pod before then, and the pod directory (0700) keeps every other user from reaching
 * them in the meantime.
 */
async function ownerOnly(files: string[]): Promise<void> {
  await Promise.all(files.map((file) => chmod(file, 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new VcError('HYPERVISOR_FAILED', `qemu's ${file} cannot be made private (chmod 0600): ${err.message}`, { cause: err });
  })));
}

/** QMP and agent-port sockets, the pid file, QEMU's output and how it ended; agent.sock: the single port of pods started before the channel had several. */
function qemuFiles(paths: PodPaths): string[] {
  const sockets = qemuAgentPorts(paths, QEMU_AGENT_PORTS).map((port) => port.socket);
  return [paths.qmpSocket, paths.agentSocket, paths.pidFile, qemuLog(paths), qemuExitFile(paths), ...sockets];
}

/** QEMU's stdout and stderr (launch.ts). */
function qemuLog(paths: PodPaths): string {
  return join(paths.dir, 'qemu.log');
}

/** How the pod's QEMU ended, written by the process that started it when nobody asked it to end. */
function qemuExitFile(paths: PodPaths): string {
  return join(paths.dir, 'qemu.exit');
}

/** The fd set holding a disk's file is known by this opaque string, so detach finds it again. */
function fdsetOpaque(serial: string): string {
  return `vc-disk:${serial}`;
}
