// What the agent's container tests (agent-containers, agent-container-ops, agent-confine,
// agent-network) share: a container rootfs from the host's static busybox, the cgroup2 mount the
// agent's --cgroup-root goes under, why a host cannot run containers, and the test-mode agent
// (agent-wire.ts) started before a file's tests and stopped after them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Conn, startAgent, type RunningAgent } from './agent-wire.js';

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
export const isRoot = process.getuid?.() === 0;
export const cgroup2Mount = (() => {
  try {
    return readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '))
      .find((f) => f[2] === 'cgroup2')?.[1];
  } catch { return undefined; }
})();
/** Why this host cannot run the agent's containers; '' when it can. */
export const containerSkipReason = !isRoot ? 'containers need root (namespaces, mounts, cgroups)'
  : !BUSYBOX ? 'no static busybox (apt-get install busybox-static)'
  : !cgroup2Mount ? 'no cgroup2 hierarchy mounted' : '';

/** What a test file's rootfs has beyond busybox, its applet links and a root-only passwd/group. */
export interface RootfsOptions {
  /** Directories besides bin, etc, proc, sys, dev and tmp. */
  dirs?: string[];
  passwd?: string;
  group?: string;
  /** Files by path relative to the rootfs, with their content. */
  files?: Record<string, string>;
  /** Symlinks by path relative to the rootfs, with their target. */
  links?: Record<string, string>;
}

/** A container rootfs at `at` from the host's static busybox. */
export function buildBusyboxRootfs(at: string, opts: RootfsOptions = {}): void {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', ...(opts.dirs ?? [])]) mkdirSync(join(at, d), { recursive: true });
  chmodSync(join(at, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX!, join(at, 'bin/busybox'));
  chmodSync(join(at, 'bin/busybox'), 0o755);
  for (const applet of spawnSync(BUSYBOX!, ['--list-full'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
    const path = join(at, applet);
    if (existsSync(path)) continue;
    mkdirSync(dirname(path), { recursive: true });
    symlinkSync('/bin/busybox', path);
  }
  writeFileSync(join(at, 'etc/passwd'), opts.passwd ?? 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(at, 'etc/group'), opts.group ?? 'root:x:0:\n');
  for (const [path, content] of Object.entries(opts.files ?? {})) writeFileSync(join(at, path), content);
  for (const [path, target] of Object.entries(opts.links ?? {})) symlinkSync(target, join(at, path));
}

/** A test file's agent: its temp dir with the rootfs and run dir, its cgroup root, a connection. */
export interface ContainerAgent {
  dir: string;
  rootfs: string;
  runDir: string;
  cgroupRoot: string;
  agent: RunningAgent;
  c: Conn;
}

/**
 * A temp dir /tmp/<tmpPrefix>XXXXXX holding the rootfs and the run dir, and the agent serving there
 * with <cgroup2 mount>/<cgroupName>-<pid> as its cgroup root. On failure nothing is left behind.
 */
async function startContainerAgent(tmpPrefix: string, cgroupName: string, rootfsOptions: RootfsOptions): Promise<ContainerAgent> {
  const dir = mkdtempSync(join('/tmp', tmpPrefix));
  let agent: RunningAgent | undefined;
  try {
    const rootfs = join(dir, 'rootfs');
    const runDir = join(dir, 'run');
    buildBusyboxRootfs(rootfs, rootfsOptions);
    const cgroupRoot = join(cgroup2Mount!, `${cgroupName}-${process.pid}`);
    agent = await startAgent(dir, ['--cgroup-root', cgroupRoot, '--run-dir', runDir]);
    const c = await Conn.hello(agent.sockPath);
    return { dir, rootfs, runDir, cgroupRoot, agent, c };
  } catch (e) {
    agent?.kill();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Closes `c`, sends SIGTERM (a clean exit removes the agent's containers and cgroup root), waits up
 * to 5 s, then SIGKILLs; the exit code, or 'timeout'.
 */
export async function stopAgent(agent: RunningAgent, c?: Conn): Promise<number | null | 'timeout'> {
  c?.close();
  agent.proc.kill('SIGTERM');
  const code = await Promise.race([agent.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
  agent.kill();
  return code;
}

/** stopAgent, checking that the agent exited 0 (and removed its cgroup root, when asked); then the temp dir goes. */
async function stopContainerAgent(rig: ContainerAgent, check: { cgroupRootRemoved: boolean }): Promise<void> {
  const code = await stopAgent(rig.agent, rig.c);
  assert.is(code, 0, `agent exit: ${rig.agent.stderr()}`);
  if (check.cgroupRootRemoved) assert.not.ok(existsSync(rig.cgroupRoot), 'the cgroup root is removed at exit');
  rmSync(rig.dir, { recursive: true, force: true });
}

/** Defines a file's tests and runs them, or, when `skipReason` is set, says why and runs a placeholder. */
export function runOrSkip(title: string, skipReason: string, defineTests: () => void): void {
  if (skipReason) {
    console.log(`SKIP ${title}: ${skipReason}`);
    test('skipped', () => {});
  } else {
    defineTests();
  }
  test.run();
}

/** A test file of containers on the test-mode agent: what it calls its agent, and its tests. */
export interface ContainerSuite {
  /** Names the file in its SKIP line. */
  title: string;
  /** /tmp/<tmpPrefix>XXXXXX holds the rootfs and the run dir. */
  tmpPrefix: string;
  /** The agent's cgroup root is <cgroup2 mount>/<cgroupName>-<pid>. */
  cgroupName: string;
  rootfs: RootfsOptions;
  /** Whether the end checks that the agent removed its cgroup root. */
  cgroupRootRemoved: boolean;
  /** Given the started agent before the first test. */
  started: (rig: ContainerAgent) => void;
  defineTests: () => void;
}

/**
 * Starts the agent before the file's tests and stops it after them (checking its clean exit), then
 * runs the tests; on a host that cannot run containers, says why instead.
 */
export function containerAgentSuite(suite: ContainerSuite): void {
  let rig: ContainerAgent | undefined;
  test.before(async () => {
    if (containerSkipReason) return;
    rig = await startContainerAgent(suite.tmpPrefix, suite.cgroupName, suite.rootfs);
    suite.started(rig);
  });
  test.after(async () => {
    if (rig) await stopContainerAgent(rig, { cgroupRootRemoved: suite.cgroupRootRemoved });
  });
  runOrSkip(suite.title, containerSkipReason, suite.defineTests);
}
