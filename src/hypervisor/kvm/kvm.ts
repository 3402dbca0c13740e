// The built-in VMM behind the Hypervisor interface: one detached vc-vmm per pod, inside the pod's
// own cgroup, driven through its control socket; the agent is reached over hybrid vsock.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chown, mkdir, readFile, rm } from 'node:fs/promises';
import { VcError } from '../../errors.js';
import { createPodCgroup, podCgroupPaths, removePodCgroup } from '../../host/cgroup.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, isSameProcess, processStartTime, signalProcess, waitForExit } from '../../host/process.js';
import { reapPod, removeEmptyDir } from '../../host/reap.js';
import type { StepHook } from '../../crash-points.js';
import { native, nativeExecutable, type KvmProbe } from '../../native.js';
import { writeFileAtomic } from '../../store/atomic.js';
import type { PodPaths } from '../../store/paths.js';
import type { PodResources, VmmRecord } from '../../model/records.js';
import { type AgentEndpoint, type Hypervisor, type HypervisorLimits, type SnapshotCheck, type SnapshotFiles, type SnapshotResult, type VmSpec } from '../types.js';
import { AGENT_VSOCK_PORT, IMAGE_SLOTS, cgroupLimits, cgroupName, detachFailure, snapshotBytes, snapshotCheckOf, vmmArgs, vmmConfig, vmmEndFromLog, vmmRestoreArgs } from './config.js';
import { controlRequest } from './control.js';
import { jailArgs, jailRoot, snapshotFileLimit, vmmJail } from './jail.js';
import { LAUNCHER_ENV, runThroughLauncher } from './launcher.js';
import { VersionCache } from './vmm-version.js';

// `vc-vmm run|restore --detach` answers once the VM runs: seconds at most, even in the nested harness's L1.
const DETACH_TIMEOUT_MS = 30_000;

/** One per process: every KvmHypervisor runs the same vc-vmm. */
const VMM_VERSIONS = new VersionCache();

/** Why pods cannot boot on the built-in VMM with this KVM probe (HYPERVISOR_UNAVAILABLE), or null. */
export function kvmUnavailable(probe: KvmProbe): VcError | null {
  if (probe.stockGuests) return null;
  return new VcError(
    'HYPERVISOR_UNAVAILABLE',
    `hypervisor "kvm" cannot run here: ${probe.reason ?? 'KVM cannot run stock guests'}; use hypervisor "qemu" (or "auto"), which runs with TCG emulation on this host`,
  );
}

export class KvmHypervisor implements Hypervisor {
  readonly kind = 'kvm' as const;
  /**
   * vc-vmm's own bounds (native/vmm/kvm/config.cc): RAM is one window below the MMIO gap at 3 GiB
   * (arch/x86/layout.h), vCPUs 1..254; the VM is built with IMAGE_SLOTS read-only block slots.
   */
  readonly limits: HypervisorLimits = { memoryMiB: { min: 2, max: 3072 }, vcpus: { min: 1, max: 254 }, diskSlots: IMAGE_SLOTS };

  async check(): Promise<void> {
    const unavailable = kvmUnavailable(native().kvmProbe());
    if (unavailable) throw unavailable;
    try {
      nativeExecutable('vc-vmm');
    } catch (err) {
      throw new VcError('HYPERVISOR_UNAVAILABLE', `hypervisor "kvm": ${(err as Error).message}`, { cause: err });
    }
  }

  async start(spec: VmSpec, options: { signal?: AbortSignal; step?: StepHook } = {}): Promise<VmmRecord> {
    return this.#launchVm(spec, (cgroups, jail) => vmmArgs(spec.paths, cgroups, jail, spec.snapshotDir), options);
  }

  /**
   * `vc-vmm restore` with the wiring `start` gives `run`, through the same launch (the launcher
   * when there is one). vc-vmm opens the snapshot's files before it enters the jail, so the
   * template's directory (root's, 0700) stays out of the jail.
   */
  async restore(spec: VmSpec, snapshot: SnapshotFiles, options: { signal?: AbortSignal; step?: StepHook } = {}): Promise<VmmRecord> {
    return this.#launchVm(spec, (cgroups, jail) => vmmRestoreArgs(spec.paths, snapshot, cgroups, jail), options);
  }

  /**
   * `{"op":"snapshot"}` on the control socket: vc-vmm pauses, writes `state` then `memory` into
   * `dir` and stops the VM. The process is then ended as `stop` ends it: a template's source never runs on.
   */
  async snapshot(vmm: VmmRecord, paths: PodPaths, dir: string): Promise<SnapshotResult> {
    if (!(await this.isRunning(vmm, paths))) throw new VcError('HYPERVISOR_FAILED', `vc-vmm (pid ${vmm.pid}) is not running`);
    // Writing guest RAM takes about a second per GiB on a slow disk: a generous bound.
    let answer: Record<string, unknown>;
    try {
      answer = await controlRequest(paths.controlSocket, 'snapshot', { dir }, 300_000);
    } catch (err) {
      // What the VMM said last (and how it ended, if it did) is where the cause is.
      const ended = (await this.isRunning(vmm, paths).catch(() => true)) ? null : await this.exitDetail(vmm, paths).catch(() => null);
      const log = (await readFile(paths.vmmLog, 'utf8').catch(() => '')).trim().split('\n').slice(-10).join('\n');
      throw new VcError('HYPERVISOR_FAILED', `${(err as Error).message}${ended ? ` (vc-vmm ${ended})` : ''}${log ? `\nvc-vmm log, last lines:\n${log}` : ''}`, { cause: err });
    }
    await this.stop(vmm, paths, { timeoutMs: 5000 });
    return { bytes: snapshotBytes(answer) };
  }

  /** `vc-vmm snapshot verify`: both files read whole (RAM's CRC-32C too), no KVM needed. */
  async verifySnapshot(snapshot: SnapshotFiles, options: { signal?: AbortSignal } = {}): Promise<SnapshotCheck> {
    const args = ['snapshot', 'verify', '--state', snapshot.state, '--memory', snapshot.memory];
    return new Promise((resolve, reject) => {
      // Reading RAM runs at disk speed: a generous bound, as for writing it.
      execFile(nativeExecutable('vc-vmm'), args, { signal: options.signal, timeout: 300_000 }, (err, stdout, stderr) => {
        const answer = err ? null : snapshotCheckOf(stdout);
        if (answer) return resolve(answer);
        const why = stderr.trim().replace(/^vc-vmm snapshot verify: /, '') || (err?.message ?? `no answer in ${JSON.stringify(stdout)}`);
        const code = (err as { code?: unknown } | null)?.code === 1 ? 'TEMPLATE_CORRUPT' : 'HYPERVISOR_FAILED';
        reject(new VcError(code, `vc-vmm snapshot verify: ${why}`, err ? { cause: err } : undefined));
      });
    });
  }

  /** vc-vmm --version, spawned once per binary (vmm-version.ts): every restored start checks it. */
  async vmmVersion(): Promise<string> {
    return VMM_VERSIONS.get(nativeExecutable('vc-vmm'));
  }

  async #launchVm(spec: VmSpec, args: (cgroups: readonly string[], jail: string[]) => string[], options: { signal?: AbortSignal; step?: StepHook }): Promise<VmmRecord> {
    const { paths } = spec;
    const jail = vmmJail(process.env, process.getuid?.() === 0, paths, spec.diskDirs ?? []);
    if (jail && spec.snapshotDir) {
      // The snapshot op's files are created by the jail's user, and the memory file is RAM + 4 KiB.
      await chown(spec.snapshotDir, jail.uid, jail.gid);
      jail.maxFileBytes = snapshotFileLimit(spec.memoryMiB);
    }
    await this.cleanup(paths);
    // What the jail binds must exist (an empty image cache has no directory yet).
    for (const dir of jail?.readOnlyDirs ?? []) await mkdir(dir, { recursive: true });
    await writeFileAtomic(paths.vmmConfig, `${JSON.stringify(vmmConfig(spec), null, 1)}\n`, { mode: 0o600 });
    // A group left by a start that was killed part-way holds nothing of a live pod (the pod lock is
    // held and the pod is not running): remove it, with anything in it, rather than fail forever.
    await removePodCgroup(podCgroupPaths(podCgroupName(spec.id, paths)));
    const cgroup = createPodCgroup(podCgroupName(spec.id, paths), cgroupLimits(spec));
    options.step?.('cgroup-created');
    try {
      const pid = await this.launch(spec, args(cgroup.paths, jailArgs(jail)), options.signal);
      options.step?.('vmm-detached');
      return { pid, startTime: await processStartTime(pid), startedAt: new Date().toISOString(), cgroup };
    } catch (err) {
      await removePodCgroup(cgroup.paths).catch(() => {});
      await this.cleanup(paths);
      throw err;
    }
  }

  /**
   * vc-vmm --detach answers once the VM runs, so its exit status is the start result. With
   * VC_VMM_LAUNCHER set, a pre-forked spare of that `vc-vmm launcher` runs it (the process spawn
   * paid ahead of time); with no launcher listening there, vc-vmm is spawned as usual.
   */
  private async launch(spec: VmSpec, vmmArguments: string[], signal?: AbortSignal): Promise<number> {
    const { paths } = spec;
    const fail = async (detail: string, cause?: unknown): Promise<never> => {
      const log = (await readFile(paths.vmmLog, 'utf8').catch(() => '')).trim();
      throw new VcError('HYPERVISOR_FAILED', `vc-vmm failed to start pod ${spec.id}: ${[detail, log].filter(Boolean).join('\n')}`, { cause });
    };
    const launcher = process.env[LAUNCHER_ENV];
    if (launcher) {
      const run = await runThroughLauncher(launcher, vmmArguments, { netns: spec.network?.netns, timeoutMs: DETACH_TIMEOUT_MS, signal });
      if (run) {
        const pid = /"pid"\s*:\s*(\d+)/.exec(run.output)?.[1];
        if (run.code === 0 && pid) return Number(pid);
        return fail(run.output.trim() || `exit code ${run.code} through the launcher at ${launcher}`);
      }
    }
    return new Promise((resolve, reject) => {
      // vc-vmm joins the pod's namespace itself (`--netns`): no nsenter process in front of it.
      const args = spec.network ? [...vmmArguments, '--netns', spec.network.netns] : vmmArguments;
      execFile(nativeExecutable('vc-vmm'), args, { signal, timeout: DETACH_TIMEOUT_MS }, (err, stdout, stderr) => {
        const pid = /"pid"\s*:\s*(\d+)/.exec(stdout)?.[1];
        if (!err && pid) return resolve(Number(pid));
        fail(detachFailure(err, stderr, stdout, DETACH_TIMEOUT_MS), err ?? undefined).catch(reject);
      });
    });
  }

  resources(id: string, paths: PodPaths): PodResources {
    return {
      marker: paths.vmmConfig,
      files: vmmFiles(paths),
      dirs: [jailRoot(paths)],
      cgroup: podCgroupPaths(podCgroupName(id, paths)),
    };
  }

  async reap(id: string, paths: PodPaths, vmm?: VmmRecord, options: { dryRun?: boolean } = {}): Promise<string[]> {
    const resources = this.resources(id, paths);
    // A recorded group is the one to remove even if the host's hierarchy has moved since.
    if (vmm?.cgroup) resources.cgroup = [...new Set([...vmm.cgroup.paths, ...(resources.cgroup ?? [])])];
    return reapPod(resources, vmm ? [{ pid: vmm.pid, startTime: vmm.startTime }] : [], options);
  }

  agentEndpoint(paths: PodPaths): AgentEndpoint {
    return { kind: 'hybrid-vsock', path: paths.agentSocket, port: AGENT_VSOCK_PORT };
  }

  async isRunning(vmm: VmmRecord, paths: PodPaths): Promise<boolean> {
    return isSameProcess(vmm.pid, vmm.startTime, paths.vmmConfig);
  }

  /**
   * How the VMM recorded in `vmm` ended (e.g. "killed by SIGSYS (…seccomp…)"), from its monitor's
   * line in the VMM log; null when unknown. Call once isRunning says it is not running.
   */
  async exitDetail(vmm: VmmRecord, paths: PodPaths): Promise<string | null> {
    // The monitor writes its line before it reaps the VMM: once the pid is gone, the line is there.
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && isAlive(vmm.pid) && (await processStartTime(vmm.pid)) === vmm.startTime) await sleep(20);
    return vmmEndFromLog(await readFile(paths.vmmLog, 'utf8').catch(() => ''), vmm.pid);
  }

  async vmState(vmm: VmmRecord, paths: PodPaths): Promise<string | null> {
    if (!(await this.isRunning(vmm, paths))) return null;
    try {
      const { status } = await controlRequest(paths.controlSocket, 'status', {}, 2000);
      const state = (status as { state?: unknown } | undefined)?.state;
      return typeof state === 'string' ? state : null;
    } catch {
      return null;
    }
  }

  async pause(vmm: VmmRecord, paths: PodPaths): Promise<void> {
    await this.request(vmm, paths, 'pause');
  }

  async resume(vmm: VmmRecord, paths: PodPaths): Promise<void> {
    await this.request(vmm, paths, 'resume');
  }

  async attachDisk(vmm: VmmRecord, paths: PodPaths, disk: { serial: string; path: string }): Promise<void> {
    await this.request(vmm, paths, 'attachBlock', { path: disk.path, readOnly: true, serial: disk.serial });
  }

  async detachDisk(vmm: VmmRecord, paths: PodPaths, serial: string): Promise<void> {
    await this.request(vmm, paths, 'detachBlock', { serial });
  }

  private async request(vmm: VmmRecord, paths: PodPaths, op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (!(await this.isRunning(vmm, paths))) throw new VcError('HYPERVISOR_FAILED', `vc-vmm (pid ${vmm.pid}) is not running`);
    return controlRequest(paths.controlSocket, op, args);
  }

  async stop(vmm: VmmRecord, paths: PodPaths, options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 5000;
    try {
      if (await this.isRunning(vmm, paths)) {
        // A VMM already on its way out may close the socket first, and one that does not answer
        // is ended by signals: either way what follows settles it.
        await controlRequest(paths.controlSocket, 'stop', {}, Math.min(timeoutMs, 2000)).catch(() => {});
        if (!(await waitForExit(vmm.pid, timeoutMs))) {
          signalProcess(vmm.pid, 'SIGKILL');
          if (!(await waitForExit(vmm.pid, 5000))) {
            throw new VcError('HYPERVISOR_FAILED', `vc-vmm (pid ${vmm.pid}) did not exit after SIGKILL`);
          }
        }
      }
    } finally {
      // Whatever is still in the cgroup (nothing, normally) is killed with it.
      if (vmm.cgroup) await removePodCgroup(vmm.cgroup.paths);
    }
  }

  async cleanup(paths: PodPaths, vmm?: VmmRecord): Promise<void> {
    if (vmm?.cgroup) await removePodCgroup(vmm.cgroup.paths);
    await Promise.all(vmmFiles(paths).map((p) => rm(p, { force: true })));
    await removeEmptyDir(jailRoot(paths));
  }
}

/** What vc-vmm leaves in the pod directory: its sockets and its configuration. */
function vmmFiles(paths: PodPaths): string[] {
  return [paths.controlSocket, paths.agentSocket, `${paths.agentSocket}_${AGENT_VSOCK_PORT}`, paths.vmmConfig];
}

/** The pod's cgroup name (config.ts cgroupName with sha256). */
export function podCgroupName(id: string, paths: Pick<PodPaths, 'dir'>): string {
  return cgroupName(id, paths, (text) => createHash('sha256').update(text).digest('hex'));
}
