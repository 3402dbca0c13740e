// The qemu-system-x86_64 command line for a pod, as a pure function so it can be unit-tested.
import { qemuCmdline } from '../cmdline.js';
import type { VmSpec } from '../types.js';
import type { UnprivilegedUser } from '../unprivileged.js';
import { agentPortCount, qemuAgentPorts } from './agent-ports.js';

export type QemuAccel = 'kvm' | 'tcg';

/**
 * QEMU's own seccomp filter (-sandbox): no obsolete calls, no scheduler or resource-limit changes,
 * no new processes (fork/exec: QEMU is killed by SIGSYS), no set*uid/gid. QEMU 7.2 installs the
 * filter early and changes user (-runas) late, so with -runas `elevateprivileges=deny` (and
 * `children`) kill it at its own setgid: a QEMU that drops root gets `allow` — once it has dropped
 * it holds no capability (CapEff 0) and no_new_privs, so a set*id call cannot raise it again.
 * (Started with -daemonize, which forks and calls setsid after the filter is on, QEMU cannot take
 * spawn=deny either: it is detached by the library instead, qemu.ts.)
 */
export function qemuSandbox(runAs: UnprivilegedUser | null): string {
  return `on,obsolete=deny,elevateprivileges=${runAs ? 'allow' : 'deny'},spawn=deny,resourcecontrol=deny`;
}

export interface QemuArgsOptions {
  /** The host's TSC rate, for the TCG guest's command line (cmdline.ts). */
  hostTscKhz?: number;
  agentPorts?: number;
  /** The user QEMU drops to once it has opened its devices, files and sockets (-runas). */
  runAs?: UnprivilegedUser | null;
}

/** QEMU stays in the foreground: the library detaches it (qemu.ts). */
export function qemuArgs(spec: VmSpec, accel: QemuAccel, options: QemuArgsOptions = {}): string[] {
  const { paths } = spec;
  const { hostTscKhz, agentPorts = agentPortCount(spec.memoryMiB), runAs = null } = options;
  const ports = qemuAgentPorts(paths, agentPorts);
  const cmdline = qemuCmdline(spec.kernelCmdline, accel, hostTscKhz);
  return [
    '-name', `vc-${spec.id}`,
    // microvm: no PCI, no firmware; ACPI describes its virtio-mmio devices to the kernel. Under TCG
    // the legacy PIT/PIC/RTC are needed, or the kernel stalls calibrating the TSC.
    '-M', accel === 'kvm' ? 'microvm,acpi=on' : 'microvm,pit=on,pic=on,rtc=on,acpi=on',
    '-accel', accel,
    ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', `${spec.memoryMiB}M`,
    '-smp', String(spec.vcpus),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', spec.kernelPath,
    '-initrd', spec.initrdPath,
    '-append', cmdline,
    '-chardev', `file,id=console,path=${paths.console}`,
    '-serial', 'chardev:console',
    // One port per concurrent agent client (a socket chardev serves one client); QEMU keeps
    // port number 0 for a console, so max_ports is one more than the agent ports.
    '-device', `virtio-serial-device,max_ports=${ports.length + 1}`,
    // Container images arrive later as SCSI disks hot-plugged on this controller's bus.
    '-device', 'virtio-scsi-device,id=scsi0',
    ...ports.flatMap((port) => [
      '-chardev', `socket,id=${port.chardev},path=${port.socket},server=on,wait=off`,
      '-device', `virtserialport,chardev=${port.chardev},name=${port.name}`,
    ]),
    // The pod's NICs: each tap (made in the pod's namespace, where QEMU runs) with the MAC and MTU
    // of the interface it mirrors. No vhost: /dev/vhost-net is not on every host.
    ...(spec.network?.nics ?? []).flatMap((nic, i) => [
      '-netdev', `tap,id=net${i},ifname=${nic.tap},script=no,downscript=no,vhost=off`,
      '-device', `virtio-net-device,netdev=net${i},mac=${nic.mac},host_mtu=${nic.mtu}`,
    ]),
    '-qmp', `unix:${paths.qmpSocket},server=on,wait=off`,
    '-sandbox', qemuSandbox(runAs),
    ...(runAs ? ['-runas', `${runAs.uid}:${runAs.gid}`] : []),
    '-pidfile', paths.pidFile,
  ];
}

/** The host TSC rate from /proc/cpuinfo's "cpu MHz" (the TSC rate on the VMs these run on). */
export function tscKhzFromCpuinfo(cpuinfo: string): number | undefined {
  const match = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo);
  if (!match) return undefined;
  const khz = Math.round(Number(match[1]) * 1000);
  return Number.isFinite(khz) && khz > 0 ? khz : undefined;
}
