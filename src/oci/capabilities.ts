// Linux capability names (as OCI configs and `docker --cap-add` spell them) and their numbers,
// from include/uapi/linux/capability.h, up to CAP_CHECKPOINT_RESTORE (Linux 5.9).
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

export const CAPABILITY_NAMES: readonly string[] = Object.keys(CAPABILITIES);

export function isCapabilityName(name: string): boolean {
  return Object.hasOwn(CAPABILITIES, name);
}

/**
 * `chown`, `CHOWN` or `CAP_CHOWN` as `CAP_CHOWN` (docker's --cap-add spelling); `ALL` stays `ALL`.
 * Unknown names come back as given, upper-cased, for the caller's check to name.
 */
export function normalizeCapabilityName(name: string): string {
  const upper = name.trim().toUpperCase();
  if (upper === 'ALL') return upper;
  return upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/**
 * A set of names as the agent's mask (bit n = capability n). Numbers up to 2^41 stay exact in
 * a double, which is what the JSON wire carries.
 */
export function capabilityMask(names: readonly string[]): number {
  let mask = 0;
  const seen = new Set<number>();
  for (const name of names) {
    const bit = CAPABILITIES[name];
    if (bit === undefined || seen.has(bit)) continue;
    seen.add(bit);
    mask += 2 ** bit;
  }
  return mask;
}
