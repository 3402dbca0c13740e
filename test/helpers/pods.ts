// Helpers for integration tests on real VMs: collect a process's output, and clean up a root.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { deletePod, listPods, stopPod } from '../../src/index.js';

export async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/**
 * VMM processes (QEMU, vc-vmm) whose command line mentions `marker` (a test's root directory). By
 * the program: the `ip`, `tc`, `nsenter` and `unshare` runs that make a pod's network name its
 * directory too, and node processes (virtc, test workers) are not VMMs.
 */
export function vmmProcessesUnder(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const program = argv.slice(0, argv.indexOf('\0')).split('/').pop() ?? '';
      if (argv.includes(marker) && /^(qemu-system-|vc-vmm$)/.test(program)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Best-effort teardown so one failing test does not leave VMs running behind the next. */
export async function teardownRoot(root: string): Promise<void> {
  if (!existsSync(root)) return;
  for (const pod of await listPods({ root }).catch(() => [])) {
    if (pod.state === 'running' || pod.state === 'paused') await stopPod(pod.id, { root }).catch(() => {});
    await deletePod(pod.id, { root }).catch(() => {});
  }
  for (const pid of vmmProcessesUnder(root)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
}

/**
 * `pids` without kernel threads: on real KVM a VM's owner gets a per-VM kernel worker
 * (kvm-nx-lpage-recovery) that is put in the owner's cgroup; it goes when the VM does.
 */
export function withoutKernelThreads(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return ppid !== 2;
    } catch {
      return true; // gone meanwhile: let the caller's assertion see it
    }
  });
}
