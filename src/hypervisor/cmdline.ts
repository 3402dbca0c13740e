// The guest kernel command line, all of it: what every guest gets and what each hypervisor adds.
import type { QemuAccel } from './qemu/command.js';

/**
 * `console=ttyS0`: the console log. `panic=-1`: a panicking guest reboots at once, which ends the
 * VMM (see the `reboot=` of each hypervisor below). `vc.hostname`: read by the agent (PID 1).
 */
export function guestCmdline(hostname: string): string {
  return `console=ttyS0 panic=-1 random.trust_cpu=on vc.hostname=${hostname}`;
}

/**
 * The built-in VMM. `reboot=k`: the guest's reboot (and panic=-1) pulses the i8042 reset line, which
 * ends the VMM. `pci=off`: the VM has no PCI; probing it only costs exits. `quiet`: every byte
 * written to the 8250 console is an exit to the VMM (nested, one L2 boot printed for tens of
 * seconds); warnings and the agent's own lines still reach console.log.
 */
export function kvmCmdline(base: string): string {
  return `${base} reboot=k pci=off quiet`;
}

/**
 * QEMU. `reboot=t`: a guest reboot (or panic=-1) triple-faults, which -no-reboot turns into QEMU's
 * exit. `tsc_early_khz` (TCG only, given `hostTscKhz`): under TCG the guest reads the host's TSC,
 * but the kernel often fails to calibrate it against the emulated PIT and then hangs before /init
 * (7 of 10 boots here); telling it the rate skips that calibration.
 */
export function qemuCmdline(base: string, accel: QemuAccel, hostTscKhz?: number): string {
  const cmdline = `${base} reboot=t`;
  return accel === 'tcg' && hostTscKhz ? `${cmdline} tsc_early_khz=${hostTscKhz}` : cmdline;
}
