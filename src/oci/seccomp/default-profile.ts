// virtcontainers' own default seccomp profile for `virtc run` and containers without one: allow
// everything except a deny-list of calls a container has no business making. Each pod is a VM, so
// this is defence in depth for the guest kernel the pod's containers share, and for the pod's
// setup (mounts, namespaces, clock) that the agent made and the container must keep.
// A deny-list (default ALLOW) rather than an allow-list keeps new system calls working in old
// profiles; the cost is that a new dangerous call is allowed until it is added here.
import type { OciSeccompProfile, OciSeccompSyscall } from './profile.js';

const EPERM = 1;
const ENOSYS = 38;

/** CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET}: the namespace bits of clone(2)'s flags. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
/** unshare(2) also takes CLONE_NEWTIME (clone(2) cannot: that bit is part of its exit signal). */
const UNSHARE_NAMESPACE_FLAGS = CLONE_NAMESPACE_FLAGS | 0x80;
const AF_VSOCK = 40;

/** Denied with EPERM, each group with its reason. */
export const DENIED_SYSCALLS: ReadonlyArray<{ names: string[]; why: string }> = [
  { names: ['init_module', 'finit_module', 'delete_module', 'create_module', 'query_module', 'get_kernel_syms'],
    why: 'loading or removing kernel code changes the guest kernel every container of the pod runs on' },
  { names: ['kexec_load', 'kexec_file_load'], why: 'replaces the running guest kernel' },
  { names: ['reboot'], why: 'halts or restarts the whole pod VM' },
  { names: ['swapon', 'swapoff'], why: 'swap is the guest\'s, shared by every container' },
  { names: ['mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr'],
    why: 'would undo the mount table the agent set up (masked and read-only paths included), in old or new API' },
  { names: ['setns'], why: 'joins another namespace, possibly the guest\'s or another container\'s' },
  { names: ['bpf'], why: 'loads programs into the guest kernel: a large attack surface' },
  { names: ['perf_event_open'], why: 'observes other processes and the kernel; a history of kernel bugs and side channels' },
  { names: ['userfaultfd'], why: 'lets an exploit pause the kernel inside a copy from user memory, widening races' },
  { names: ['keyctl', 'add_key', 'request_key'], why: 'kernel keyrings are not namespaced: keys would be shared across containers' },
  { names: ['io_uring_setup', 'io_uring_enter', 'io_uring_register'],
    why: 'a large, fast-changing kernel interface behind many privilege escalations; its users fall back to plain calls' },
  { names: ['open_by_handle_at', 'name_to_handle_at'], why: 'file handles open files by inode, around the container\'s root directory' },
  { names: ['iopl', 'ioperm'], why: 'raw I/O port access to the VM\'s devices' },
  { names: ['acct'], why: 'process accounting is system-wide, not per container' },
  { names: ['quotactl', 'quotactl_fd'], why: 'disk quotas are per filesystem, not per container' },
  { names: ['settimeofday', 'stime', 'clock_settime', 'clock_adjtime', 'adjtimex'],
    why: 'the clock is not namespaced: it would change the time of every container in the pod' },
  { names: ['syslog'], why: 'reads or clears the kernel log, which holds kernel addresses and other containers\' messages' },
  { names: ['kcmp'], why: 'compares kernel objects of processes, leaking kernel pointer order' },
  { names: ['process_vm_readv', 'process_vm_writev'], why: 'reads or writes another process\'s memory without stopping it; debuggers use ptrace' },
  { names: ['lookup_dcookie'], why: 'kernel profiling support that leaks kernel information' },
  { names: ['uselib'], why: 'obsolete a.out library loader with a history of exploits' },
  { names: ['vm86', 'vm86old'], why: 'i386 virtual-8086 mode: legacy, rarely used, exploited before' },
  { names: ['nfsservctl', '_sysctl'], why: 'removed interfaces; nothing legitimate calls them' },
];

/** personality(2) values that stay allowed: what libc, setarch and gdb use. The others change how
 *  the kernel treats the process (READ_IMPLIES_EXEC makes data executable, MMAP_PAGE_ZERO maps page
 *  zero for NULL-pointer exploits, other execution domains emulate other systems' calls). */
export const ALLOWED_PERSONALITIES: ReadonlyArray<{ value: number; why: string }> = [
  { value: 0x0, why: 'PER_LINUX: the normal value' },
  { value: 0x8, why: 'PER_LINUX32: `linux32`/`setarch i686` for 32-bit builds' },
  { value: 0x20000, why: 'UNAME26: old software that wants a 2.6 version number' },
  { value: 0x20008, why: 'PER_LINUX32 | UNAME26' },
  { value: 0x40000, why: 'ADDR_NO_RANDOMIZE: gdb and `setarch -R` turn off ASLR for the process only' },
  { value: 0xffffffff, why: 'a query: returns the current personality, changes nothing' },
];

function deny(names: string[]): OciSeccompSyscall {
  return { names, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM };
}

/** Rules are tried in order, first match wins (docs/seccomp.md). */
export function defaultSeccompProfile(): OciSeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      ...DENIED_SYSCALLS.map((group) => deny([...group.names])),
      // New namespaces (user namespaces above all) open kernel code paths that are otherwise out of
      // reach and would let a process leave the container's view; the other clone/unshare flags
      // (threads, CLONE_FS, CLONE_FILES...) stay allowed.
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: CLONE_NAMESPACE_FLAGS, valueTwo: 0 }] },
      deny(['clone']),
      { names: ['unshare'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: UNSHARE_NAMESPACE_FLAGS, valueTwo: 0 }] },
      deny(['unshare']),
      // clone3 takes its flags in memory, which a filter cannot read: ENOSYS (not EPERM) makes libc
      // fall back to clone(2), whose flags the rule above checks.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      // personality: only the low 32 bits are the kernel's argument, so the mask ignores the rest.
      ...ALLOWED_PERSONALITIES.map(({ value }): OciSeccompSyscall => (
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0xffffffff, valueTwo: value }] })),
      deny(['personality']),
      // vsock is not network-namespaced: it would reach the host's side of the pod's channels and
      // the agent's port, around the pod's network. (i386's socketcall(2) cannot be checked: its
      // arguments are in memory.) The domain is an int: the mask ignores the register's upper half.
      { names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0xffffffff, valueTwo: AF_VSOCK }] },
    ],
  };
}
