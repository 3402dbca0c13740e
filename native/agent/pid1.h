// What the agent does because it is the VM's init (docs/agent-protocol.md, "Guest side
// start-up"): file systems, kernel modules, hostname, and powering off.
#pragma once

// Moves / off the initramfs rootfs (see mounts_root_off_rootfs); mounts /proc, /sys, /dev,
// /dev/pts, /dev/shm, /run, /tmp and cgroup2; makes fds 0-2 valid; points logging at
// /dev/console; loads /etc/vc-modules; sets the hostname. Failures are logged,
// never fatal: a half-set-up guest that answers the host is more useful than a panic.
void pid1_setup();

// Terminates every process (SIGTERM, a short grace period, SIGKILL), syncs and powers off.
// Never returns; if the power-off itself fails it sleeps forever, since init must not exit.
[[noreturn]] void pid1_power_off();
