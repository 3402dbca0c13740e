// Helpers for integration tests on real VMs: collect a process's output, and clean up a root.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { deletePod, listPods, stopPod } from '../../src/index.js';

export async function readAll(stream: Readable): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}

/** VMM processes (QEMU, vc-vmm) whose command line mentions `marker` (a test's root directory). */
export function vmmProcessesUnder(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (argv.includes(marker) && !argv.includes('node')) pids.push(Number(entry));
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
