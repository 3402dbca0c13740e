// What the host cgroup tests share (test/native/cgroup.test.ts, test/kvm/cgroup-vmm.test.ts):
// the hierarchy this host offers, names unique to this run, readers, and a test.after that removes
// any group of this run that a failed test left behind.
import { test } from 'uvu';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupSupport } from '../../src/host/cgroup.js';
import type { CgroupPaths } from '../../src/model/cgroup.js';
import { native } from '../../src/native.js';

export const MiB = 1024 * 1024;
export const support = cgroupSupport();
export const prefix = `vct-${process.pid}`;
/** The limits most tests create groups with. */
export const limits = { cpus: 1.5, memoryBytes: 256 * MiB, pidsMax: 64 };

// Every group directory this run might have made, whatever happened to the test that made it.
export function leftoverGroups(): string[] {
  const parents =
    support.version === 2 ? [support.root] : support.version === 1 ? Object.values(support.roots) : [];
  return parents.flatMap((p) => {
    const parent = join(p, 'virtcontainers');
    if (!existsSync(parent)) return [];
    return readdirSync(parent).filter((n) => n.startsWith(prefix)).map((n) => join(parent, n));
  });
}

/** Registers the test.after that removes leftover groups, then `cleanup` (e.g. a temp dir). */
export function removeLeftoverGroupsAfter(cleanup: () => void): void {
  test.after(async () => {
    const left = leftoverGroups();
    if (left.length) await native().cgroupRemove(left);
    cleanup();
  });
}

let seq = 0;
export function groupName(what: string): string {
  return `${prefix}-${what}-${seq++}`;
}

export function read(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

// A zombie counts as gone: a detached VMM is reaped by whoever PID 1 is, whenever it likes.
export function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

// The directory of the group's `controller` hierarchy (v2: the one directory).
export function groupDir(cg: CgroupPaths, controller: 'cpu' | 'memory' | 'pids'): string {
  if (support.version !== 1) return cg.paths[0] ?? '';
  const mount = support.roots[controller];
  return cg.paths.find((p) => p.startsWith(`${mount}/`)) ?? '';
}

/** A test that needs some cgroup hierarchy: SKIP with the reason on a host with none. */
export function cgroupTest(name: string, fn: () => Promise<void> | void): void {
  test(name, async () => {
    if (support.version === null) {
      console.log(`\nSKIP ${name}: ${support.reason}`);
      return;
    }
    await fn();
  });
}
