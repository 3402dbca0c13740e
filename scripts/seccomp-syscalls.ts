// Generates src/oci/seccomp/syscall-table.ts, the system call numbers the seccomp compiler needs,
// from the kernel's user-space headers (Debian's linux-libc-dev):
//   x86_64 from asm/unistd_64.h, i386 from asm/unistd_32.h, x32 from asm/unistd_x32.h (numbers with
//   the x32 bit 0x40000000 set), and the names of the generic table (asm-generic/unistd.h, what
//   arm64 and riscv use) so that a profile's names for other architectures are told apart from
//   names that are no system call at all.
// Calls newer than the installed headers are added from NEWER_CALLS below (numbered alike on every
// architecture since Linux 5.1, so one number serves x86_64, i386 and x32).
//
// Usage: node dist/scripts/seccomp-syscalls.js [--include DIR] [--out FILE]
//   --include  the headers' root (default /usr/include)
//   --out      the file to write (default src/oci/seccomp/syscall-table.ts of this tree)
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const X32_SYSCALL_BIT = 0x40000000;

/** x86_64 numbers of calls added after linux-libc-dev 6.1 (arch/x86/entry/syscalls/syscall_64.tbl). */
export const NEWER_CALLS: Record<string, number> = {
  cachestat: 451, fchmodat2: 452, map_shadow_stack: 453, futex_wake: 454, futex_wait: 455,
  futex_requeue: 456, statmount: 457, listmount: 458, lsm_get_self_attr: 459, lsm_set_self_attr: 460,
  lsm_list_modules: 461, mseal: 462, setxattrat: 463, getxattrat: 464, listxattrat: 465,
  removexattrat: 466, open_tree_attr: 467, file_getattr: 468, file_setattr: 469,
};

/** Calls only some other architectures have (ARM, s390, PowerPC, MIPS, RISC-V...) that profiles name. */
export const OTHER_ARCH_ONLY = [
  'arm_fadvise64_64', 'arm_sync_file_range', 'breakpoint', 'cacheflush', 'cachectl', 'set_tls',
  'sync_file_range2', 'usr26', 'usr32', 's390_pci_mmio_read', 's390_pci_mmio_write',
  's390_runtime_instr', 's390_guarded_storage', 's390_sthyi', 'riscv_flush_icache', 'riscv_hwprobe',
  'spu_create', 'spu_run', 'subpage_prot', 'switch_endian', 'sys_debug_setcontext', 'multiplexer',
  'rtas', 'swapcontext', 'sysmips', 'sysriscv', 'or1k_atomic', 'atomic_barrier', 'atomic_cmpxchg_32',
  'get_thread_area', 'set_thread_area', 'ppoll_time64', 'pselect6_time64', 'recvmmsg_time64',
  'semtimedop_time64', 'clock_gettime64', 'clock_settime64', 'clock_adjtime64', 'clock_getres_time64',
  'clock_nanosleep_time64', 'timer_gettime64', 'timer_settime64', 'timerfd_gettime64',
  'timerfd_settime64', 'utimensat_time64', 'mq_timedsend_time64', 'mq_timedreceive_time64',
  'rt_sigtimedwait_time64', 'futex_time64', 'sched_rr_get_interval_time64', 'io_pgetevents_time64',
];

/** `#define __NR_name <number>` and (x32) `#define __NR_name (__X32_SYSCALL_BIT + <n>)` lines. */
export function parseUnistd(text: string): Map<string, number> {
  const table = new Map<string, number>();
  for (const match of text.matchAll(/^#define __NR_(\w+)\s+(?:(\d+)|\(__X32_SYSCALL_BIT \+ (\d+)\))\s*$/gm)) {
    const number = match[2] !== undefined ? Number(match[2]) : X32_SYSCALL_BIT + Number(match[3]);
    table.set(match[1]!, number);
  }
  return table;
}

/** Every `__NR_name` asm-generic/unistd.h defines, whatever the value (some are aliases). */
export function parseGenericNames(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(/^#define __NR_(\w+)\s/gm)) names.add(match[1]!);
  // Not calls: the table's size and the start of the architecture-specific range.
  names.delete('syscalls');
  names.delete('arch_specific_syscall');
  return [...names].sort();
}

function withNewer(table: Map<string, number>, abi: 'x86_64' | 'i386' | 'x32'): Map<string, number> {
  const base = abi === 'x32' ? X32_SYSCALL_BIT : 0;
  for (const [name, number] of Object.entries(NEWER_CALLS)) {
    // map_shadow_stack is x86_64's only; the others are numbered alike everywhere.
    if (name === 'map_shadow_stack' && abi !== 'x86_64') continue;
    if (!table.has(name)) table.set(name, base + number);
  }
  return table;
}

function tableText(name: string, doc: string, table: Map<string, number>): string {
  const entries = [...table].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
  const lines = entries.map(([call, number]) => `  ${call}: ${number < X32_SYSCALL_BIT ? number : `X32 + ${number - X32_SYSCALL_BIT}`},`);
  return `/** ${doc} */\nexport const ${name}: Readonly<Record<string, number>> = {\n${lines.join('\n')}\n};\n`;
}

export function generate(include: string): string {
  const read = (path: string) => readFileSync(join(include, path), 'utf8');
  const x86_64 = withNewer(parseUnistd(read('x86_64-linux-gnu/asm/unistd_64.h')), 'x86_64');
  const i386 = withNewer(parseUnistd(read('x86_64-linux-gnu/asm/unistd_32.h')), 'i386');
  const x32 = withNewer(parseUnistd(read('x86_64-linux-gnu/asm/unistd_x32.h')), 'x32');
  const known = new Set([...x86_64.keys(), ...i386.keys(), ...x32.keys(), ...parseGenericNames(read('asm-generic/unistd.h')), ...OTHER_ARCH_ONLY]);
  const others = [...known].filter((n) => !x86_64.has(n) && !i386.has(n) && !x32.has(n)).sort();
  return [
    '// GENERATED by scripts/seccomp-syscalls.ts from linux-libc-dev\'s asm/unistd_{64,32,x32}.h and',
    '// asm-generic/unistd.h (plus the script\'s own lists of newer and other-architecture calls).',
    '// Do not edit: run `npx tsc -p tsconfig.json && node dist/scripts/seccomp-syscalls.js`.',
    '',
    `const X32 = 0x${X32_SYSCALL_BIT.toString(16)};`,
    '',
    tableText('X86_64_SYSCALLS', 'x86_64 system call numbers.', x86_64),
    tableText('I386_SYSCALLS', 'i386 system call numbers (int 0x80 / compat mode on an x86_64 kernel).', i386),
    tableText('X32_SYSCALLS', 'x32 system call numbers, the x32 bit included.', x32),
    '/** Calls of other architectures only: a profile may name them; they are skipped without a warning. */',
    `export const OTHER_ARCH_SYSCALLS: readonly string[] = [\n${others.map((n) => `  '${n}',`).join('\n')}\n];`,
    '',
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const { values } = parseArgs({ options: { include: { type: 'string', default: '/usr/include' }, out: { type: 'string' } } });
  const out = values.out ?? join(root, 'src/oci/seccomp/syscall-table.ts');
  writeFileSync(out, generate(values.include!));
  console.log(out);
}
