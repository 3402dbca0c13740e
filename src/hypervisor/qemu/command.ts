// The qemu-system-x86_64 command line for a pod, as a pure function so it can be unit-tested.
import type { VmSpec } from '../types.js';

export type QemuAccel = 'kvm' | 'tcg';

export function qemuArgs(spec: VmSpec, accel: QemuAccel): string[] {
  const { paths } = spec;
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
    '-append', spec.kernelCmdline,
    '-chardev', `file,id=console,path=${paths.console}`,
    '-serial', 'chardev:console',
    '-device', 'virtio-serial-device,max_ports=2',
    '-chardev', `socket,id=agent,path=${paths.agentSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=agent,name=agent',
    '-qmp', `unix:${paths.qmpSocket},server=on,wait=off`,
    '-daemonize',
    '-pidfile', paths.pidFile,
  ];
}
