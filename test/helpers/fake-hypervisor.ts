// A hypervisor without VMs, for unit tests of the API layer: it implements the real Hypervisor
// interface, and each "VM" is a FakeGuest (the real agent protocol on the pod's agent socket).
// Every method first runs `onStep` (which may throw, or abort the caller's AbortSignal) so a test
// can fail or cancel any call at any point; `live()` lists what the fake made and did not clean up.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { VcError } from '../../src/errors.js';
import { join } from 'node:path';
import type { AgentEndpoint, Hypervisor, HypervisorLimits, VmSpec } from '../../src/hypervisor/types.js';
import type { HypervisorKind } from '../../src/model/hypervisor.js';
import type { PodPaths } from '../../src/store/paths.js';
import type { PodResources, VmmRecord } from '../../src/model/records.js';
import { FakeGuest, type AgentFailure } from './fake-guest.js';

export type FakeStep =
  | 'check' | 'start' | 'snapshot' | 'verifySnapshot' | 'restore' | 'isRunning' | 'vmState' | 'attachDisk' | 'detachDisk' | 'stop' | 'pause' | 'resume' | 'cleanup' | 'reap'
  /** A request the guest agent is about to answer. */
  | `agent:${string}`;

export interface FakeVm {
  pid: number;
  /** For a restored VM: the snapshot's state file. */
  restoredFrom?: string;
  podId: string;
  guest: FakeGuest;
  disks: Map<string, string>;
  paused: boolean;
  /** False once the "VMM process" went away (stop, or crash()). */
  alive: boolean;
}

let nextPid = 4_000_000;

export class FakeHypervisor implements Hypervisor {
  /** No limits beyond the config schema's, like QEMU's. */
  readonly limits: HypervisorLimits = { memoryMiB: { min: 0, max: Infinity }, vcpus: { min: 0, max: Infinity }, diskSlots: null };
  readonly vms = new Map<number, FakeVm>();
  /** Every method called, in order, as "step" (plus ":pod" where a pod is known). */
  readonly calls: string[] = [];
  /** Agent ops that fail in guests started from now on (see FakeGuest.failOps). */
  readonly agentFailures = new Map<string, AgentFailure>();
  /** Run at the start of every method and agent request; throw here to make that step fail. */
  onStep: ((step: FakeStep) => void | Promise<void>) | undefined;
  /** Connections each restored guest closes at their first request (FakeGuest.closeNextConnections). */
  restoredCloses = 0;
  /** Pod directories whose leftovers cleanup() has removed. */
  readonly cleaned: string[] = [];

  /**
   * Snapshots and restores, as the built-in VMM has them, unless `snapshots` is false (QEMU's
   * shape: a fake without them).
   */
  constructor(readonly kind: HypervisorKind = 'qemu', snapshots = true) {
    if (!snapshots) {
      this.snapshot = undefined;
      this.verifySnapshot = undefined;
      this.restore = undefined;
    }
  }

  /** What vmmVersion() answers: a template made by another version is stale. */
  version = 'fake-vmm 1';

  async vmmVersion(): Promise<string> {
    return this.version;
  }

  /** Writes `state` and `memory` into `dir` (which must be empty, as vc-vmm wants it) and stops the VM. */
  snapshot: Hypervisor['snapshot'] = async (vmm, _paths, dir) => {
    const vm = this.#vm(vmm);
    await this.#step('snapshot', vm.podId);
    if (readdirSync(dir).length !== 0) throw new Error(`fake hypervisor: snapshot dir ${dir} is not empty`);
    writeFileSync(join(dir, 'state'), `fake state of ${vm.podId}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'memory'), Buffer.alloc(4096), { mode: 0o600 });
    vm.alive = false;
    await vm.guest.close();
    return { bytes: { state: statSync(join(dir, 'state')).size, memory: 4096 } };
  };

  /** The files as `snapshot` wrote them, or TEMPLATE_CORRUPT naming the one that differs (as vc-vmm's verify names it). */
  verifySnapshot: Hypervisor['verifySnapshot'] = async (snapshot) => {
    await this.#step('verifySnapshot');
    const state = readFileSync(snapshot.state, 'utf8');
    if (!/^fake state of \S+\n$/.test(state)) throw new VcError('TEMPLATE_CORRUPT', `${snapshot.state}: not a fake state file`);
    const memory = readFileSync(snapshot.memory);
    if (memory.length !== 4096 || memory.some((b) => b !== 0)) throw new VcError('TEMPLATE_CORRUPT', `${snapshot.memory}: the CRC-32C of all 4096 bytes of RAM differs`);
    return { vcpus: 1, ramBytes: 4096, ramCrc: '0x98f94189' }; // the CRC-32C of 4096 zero bytes
  };

  /** A VM whose guest is the snapshot's agent after a transport reset: pending until `restored`. */
  restore: Hypervisor['restore'] = async (spec, snapshot, options = {}) => {
    await this.#step('restore', spec.id);
    options.signal?.throwIfAborted();
    if (!existsSync(snapshot.state) || !existsSync(snapshot.memory)) throw new Error(`fake hypervisor: no snapshot at ${snapshot.state}`);
    const vmm = await this.#launch(spec);
    const vm = this.vms.get(vmm.pid)!;
    vm.restoredFrom = snapshot.state;
    vm.guest.restorePending = true;
    vm.guest.closeNextConnections = this.restoredCloses;
    return vmm;
  };

  /** For CallOptions.hypervisor: this fake, whatever kind the pod has. */
  readonly factory = (_kind: HypervisorKind): Hypervisor => this;

  /** VMs started and not yet stopped (whether or not their guest still runs). */
  live(): FakeVm[] {
    return [...this.vms.values()];
  }

  vmOf(podId: string): FakeVm | undefined {
    return this.live().find((vm) => vm.podId === podId);
  }

  /** The VMM "process" of a pod dies on its own: its guest goes, its record stays. */
  async crash(podId: string): Promise<void> {
    const vm = this.vmOf(podId);
    if (!vm) throw new Error(`fake hypervisor: pod ${podId} has no VM`);
    vm.alive = false;
    await vm.guest.close();
  }

  async check(): Promise<void> {
    await this.#step('check');
  }

  async start(spec: VmSpec, options: { signal?: AbortSignal } = {}): Promise<VmmRecord> {
    await this.#step('start', spec.id);
    options.signal?.throwIfAborted();
    return this.#launch(spec);
  }

  async #launch(spec: VmSpec): Promise<VmmRecord> {
    const guest = await FakeGuest.listen(spec.paths.agentSocket, this.agentFailures, (op) => {
      this.calls.push(`agent:${op}`);
      void this.onStep?.(`agent:${op}`);
    });
    const pid = nextPid++;
    this.vms.set(pid, { pid, podId: spec.id, guest, disks: new Map(), paused: false, alive: true });
    return { pid, accel: 'fake', startedAt: new Date().toISOString() };
  }

  agentEndpoint(paths: PodPaths): AgentEndpoint {
    return { kind: 'unix', path: paths.agentSocket };
  }

  async isRunning(vmm: VmmRecord): Promise<boolean> {
    await this.#step('isRunning');
    return this.vms.get(vmm.pid)?.alive === true;
  }

  async vmState(vmm: VmmRecord): Promise<string | null> {
    await this.#step('vmState');
    const vm = this.vms.get(vmm.pid);
    if (!vm?.alive) return null;
    return vm.paused ? 'paused' : 'running';
  }

  async attachDisk(vmm: VmmRecord, _paths: PodPaths, disk: { serial: string; path: string }): Promise<void> {
    const vm = this.#vm(vmm);
    await this.#step('attachDisk', vm.podId);
    if (vm.disks.has(disk.serial)) throw new Error(`fake hypervisor: disk ${disk.serial} is attached already`);
    vm.disks.set(disk.serial, disk.path);
  }

  async detachDisk(vmm: VmmRecord, _paths: PodPaths, serial: string): Promise<void> {
    const vm = this.#vm(vmm);
    await this.#step('detachDisk', vm.podId);
    if (!vm.disks.delete(serial)) throw new Error(`fake hypervisor: disk ${serial} is not attached`);
  }

  async stop(vmm: VmmRecord): Promise<void> {
    const vm = this.vms.get(vmm.pid);
    await this.#step('stop', vm?.podId);
    if (!vm) return;
    this.vms.delete(vmm.pid);
    if (vm.alive) await vm.guest.close();
    vm.alive = false;
  }

  async pause(vmm: VmmRecord): Promise<void> {
    const vm = this.#vm(vmm);
    await this.#step('pause', vm.podId);
    vm.paused = true;
  }

  async resume(vmm: VmmRecord): Promise<void> {
    const vm = this.#vm(vmm);
    await this.#step('resume', vm.podId);
    vm.paused = false;
  }

  async cleanup(paths: PodPaths, vmm?: VmmRecord): Promise<void> {
    await this.#step('cleanup');
    // As the real ones: whatever the VMM left goes, a dead VMM's record included.
    if (vmm && this.vms.get(vmm.pid)?.alive === false) this.vms.delete(vmm.pid);
    rmSync(paths.agentSocket, { force: true });
    this.cleaned.push(paths.dir);
  }

  resources(_id: string, paths: PodPaths): PodResources {
    return { marker: `${paths.dir}/`, files: [paths.agentSocket] };
  }

  /** As the real ones: every VM of the pod goes, whatever its record says, and its socket. */
  async reap(id: string, paths: PodPaths, _vmm?: VmmRecord, options: { dryRun?: boolean } = {}): Promise<string[]> {
    await this.#step('reap', id);
    const found: string[] = [];
    for (const vm of this.live().filter((v) => v.podId === id)) {
      found.push(`process ${vm.pid} (fake VMM)`);
      if (options.dryRun) continue;
      this.vms.delete(vm.pid);
      if (vm.alive) await vm.guest.close();
    }
    if (existsSync(paths.agentSocket)) found.push(`file ${paths.agentSocket}`);
    if (!options.dryRun) {
      rmSync(paths.agentSocket, { force: true });
      this.cleaned.push(paths.dir);
    }
    return found;
  }

  /** Ends every VM the fake still has (for test.after.each). */
  async stopAll(): Promise<void> {
    for (const vm of this.live()) {
      this.vms.delete(vm.pid);
      if (vm.alive) await vm.guest.close();
    }
  }

  #vm(vmm: VmmRecord): FakeVm {
    const vm = this.vms.get(vmm.pid);
    if (!vm?.alive) throw new Error(`fake hypervisor: no running VM with pid ${vmm.pid}`);
    return vm;
  }

  async #step(step: FakeStep, podId?: string): Promise<void> {
    this.calls.push(podId === undefined ? step : `${step}:${podId}`);
    await this.onStep?.(step);
  }
}
