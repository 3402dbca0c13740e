// Pod templates (docs/snapshots.md, "API"): createTemplate boots a pod, waits for its agent and
// snapshots it into <root>/templates/<name>.creating/, then renames that to <name>/ with its
// template.json; pods started with createPod({ template }) are restored from it. Crash-only: the
// `.creating` directory is made before anything else, and the template's pod (`template-<name>`)
// is an ordinary pod, so a maker that dies leaves a leftover the next template call (or gc)
// removes whole — the pod deleted with force (its VMM, network, cgroup), the directory removed.
import { mkdir } from 'node:fs/promises';
import { VcError } from '../errors.js';
import { CrashPoints } from '../crash-points.js';
import { resolveHypervisorKind } from '../hypervisor/select.js';
import type { Hypervisor } from '../hypervisor/types.js';
import { parseTemplateConfig, templateNameSchema, templatePodId, type TemplateConfigInput, type TemplateRecord } from '../model/template.js';
import type { PodRecord } from '../model/records.js';
import { tryLock, withLock } from '../store/lock.js';
import type { PodStore } from '../store/pod-store.js';
import { TemplateStore } from '../store/template-store.js';
import { connectAgent } from './agent-link.js';
import { hypervisorOf, storeFor, type CallOptions } from './context.js';
import { createPodOf, deletePod, startPodWith, type StartOptions } from './pod.js';
import { hasVmm } from './recover.js';
import { checkCanTemplate, unsupported } from './template-pod.js';

export interface TemplateInfo {
  name: string;
  vcpus: number;
  memoryMiB: number;
  vmmVersion: string;
  createdAt: string;
  kernel: { path: string; release: string };
  /** The snapshot's files: `state` (vCPU and device state) and `memory` (guest RAM). */
  bytes: { state: number; memory: number };
  /** Pods restored from the template whose VM runs now. */
  usedBy: string[];
}

export interface DeleteTemplateOptions extends CallOptions {
  /** Delete it even while pods restored from it run (they keep their mapping of the memory file). */
  force?: boolean;
}

/** Boots a pod as `config` says, snapshots it once its agent answers, and keeps the snapshot as template `config.name`. */
export async function createTemplate(input: TemplateConfigInput, options: StartOptions = {}): Promise<TemplateInfo> {
  const config = parseTemplateConfig(input);
  const hypervisor = await templateHypervisor(config.hypervisor, options);
  const store = storeFor(options);
  const templates = await openTemplates(store, options);
  const { name } = config;
  return withLock(templates.lock(name), `template ${name}`, { signal: options.signal }, async () => {
    if (await templates.exists(name)) {
      throw new VcError('TEMPLATE_EXISTS', `template ${JSON.stringify(name)} already exists in ${templates.dir}; delete it first (deleteTemplate / virtc template delete ${name})`);
    }
    await removeLeftover(store, templates, name, options); // ours to remove: we hold its lock
    const steps = new CrashPoints('createTemplate');
    const creating = templates.creating(name);
    // First, so whatever follows is found by the next caller if this one dies.
    await mkdir(creating.dir, { mode: 0o700 });
    steps.reach('creating-recorded');
    const podId = templatePodId(name);
    try {
      const { name: _name, hypervisor: _kind, ...podFields } = config;
      await createPodOf({ ...podFields, id: podId, hypervisor: 'kvm', containers: [] }, 'kvm', options);
      steps.reach('pod-created');
      // A restored pod's network is its own; the VMM is given the one directory it may snapshot into.
      await startPodWith(podId, options, { configureGuestNetwork: false, snapshotDir: creating.dir });
      steps.reach('pod-started');
      const record = await store.read(podId);
      const paths = store.paths(podId);
      options.onProgress?.(`snapshotting pod ${podId} into ${creating.dir}`);
      // A host connection open across the snapshot: in every restored copy the guest's vsock driver
      // resets it, and that ECONNRESET is how the copy's agent knows it was restored.
      const held = await connectAgent(hypervisor.agentEndpoint(paths, record.vmm), { timeoutMs: 10_000, signal: options.signal });
      let bytes: TemplateRecord['bytes'];
      try {
        bytes = (await hypervisor.snapshot!(record.vmm!, paths, creating.dir, { signal: options.signal })).bytes;
      } finally {
        held.close();
      }
      steps.reach('snapshot-written');
      // Read back whole before it is sealed: a file the disk damaged is found now, not at a restore
      // (which checks only a sample of RAM).
      await hypervisor.verifySnapshot?.(creating, { signal: options.signal });
      await deletePod(podId, { ...options, force: true }); // its VM has stopped: what is left is its record, network and files
      steps.reach('pod-deleted');
      const template: TemplateRecord = {
        version: 1,
        name,
        hypervisor: 'kvm',
        vcpus: record.config.vcpus,
        memoryMiB: record.config.memoryMiB,
        vmmVersion: (await hypervisor.vmmVersion?.()) ?? 'unknown',
        createdAt: new Date().toISOString(),
        kernel: { path: record.boot.kernelPath, release: record.boot.kernelRelease },
        initrd: { path: record.boot.initrdPath, digest: record.boot.initrdDigest },
        nics: (record.network?.interfaces ?? []).map((i) => ({ mac: i.mac, mtu: i.mtu })),
        bytes,
      };
      await templates.finish(template);
      steps.reach('template-sealed');
      return infoOf(template, []);
    } catch (err) {
      await removeLeftover(store, templates, name, options).catch((cleanupErr: Error) => {
        options.onProgress?.(`template ${name}: removing what the failed create made failed too (${cleanupErr.message}); the next template call retries`);
      });
      throw err;
    }
  });
}

export async function listTemplates(options: CallOptions = {}): Promise<TemplateInfo[]> {
  const store = storeFor(options);
  const templates = await openTemplates(store, options);
  const users = await templateUsers(store);
  const list: TemplateInfo[] = [];
  for (const name of await templates.names()) {
    const record = await templates.read(name).catch((err: VcError) => (err.code === 'TEMPLATE_NOT_FOUND' ? null : Promise.reject(err)));
    if (record) list.push(infoOf(record, users.get(name) ?? []));
  }
  return list;
}

/** What `verifyTemplate` read: the template's RAM and its CRC-32C, found to be what the snapshot recorded. */
export interface TemplateCheck {
  name: string;
  vcpus: number;
  ramBytes: number;
  ramCrc: string;
}

/**
 * Reads a template's two files whole and checks them as a restore would, and every byte of RAM
 * against the CRC-32C the snapshot recorded (a restore checks only a sample): for a template copied
 * from elsewhere, or one that has sat on a disk. TEMPLATE_CORRUPT names the file and what differs.
 */
export async function verifyTemplate(name: string, options: CallOptions = {}): Promise<TemplateCheck> {
  checkTemplateName(name);
  const store = storeFor(options);
  const templates = await openTemplates(store, options);
  const hypervisor = hypervisorOf(options, 'kvm');
  if (!hypervisor.verifySnapshot) throw unsupported('this hypervisor cannot read snapshots');
  return withLock(templates.lock(name), `template ${name}`, { signal: options.signal }, async () => {
    await templates.read(name); // TEMPLATE_NOT_FOUND
    try {
      return { name, ...(await hypervisor.verifySnapshot!(templates.paths(name), { signal: options.signal })) };
    } catch (err) {
      if (!(err instanceof VcError)) throw err;
      throw new VcError(err.code, `template ${JSON.stringify(name)}: ${err.message}`, { cause: err });
    }
  });
}

/** Refused (TEMPLATE_IN_USE) while pods restored from it run, unless `force`. */
export async function deleteTemplate(name: string, options: DeleteTemplateOptions = {}): Promise<void> {
  checkTemplateName(name);
  const store = storeFor(options);
  const templates = await openTemplates(store, options);
  await withLock(templates.lock(name), `template ${name}`, { signal: options.signal }, async () => {
    if (!(await templates.exists(name))) throw new VcError('TEMPLATE_NOT_FOUND', `template ${JSON.stringify(name)} not found in ${templates.dir}`);
    const users = (await templateUsers(store)).get(name) ?? [];
    if (users.length > 0 && !options.force) {
      throw new VcError('TEMPLATE_IN_USE', `template ${JSON.stringify(name)} is in use by running pod(s) ${users.join(', ')}: stop them first, or delete it with force (deleteTemplate(name, { force: true }) / virtc template delete --force ${name})`);
    }
    await templates.remove(name);
  });
}

function checkTemplateName(name: string): void {
  const checked = templateNameSchema.safeParse(name);
  if (!checked.success) throw new VcError('INVALID_CONFIG', `template name: ${checked.error.issues[0]?.message ?? 'invalid'}, got ${JSON.stringify(name)}`);
}

/**
 * Removes every template a crashed maker left (`.creating`) whose lock is free: for gc and the
 * template calls. Returns the names removed.
 */
export async function removeTemplateLeftovers(options: CallOptions = {}): Promise<string[]> {
  const store = storeFor(options);
  const templates = new TemplateStore(store.root);
  const removed: string[] = [];
  for (const name of await templates.leftovers()) {
    const lock = await tryLock(templates.lock(name)).catch(() => null);
    if (!lock) continue; // being made (or deleted) right now
    try {
      await removeLeftover(store, templates, name, options);
      removed.push(name);
    } finally {
      await lock.release();
    }
  }
  return removed;
}

/** What a dead maker of template `name` left: its pod (deleted with force) and its `.creating` directory. The caller holds the name's lock. */
async function removeLeftover(store: PodStore, templates: TemplateStore, name: string, options: CallOptions): Promise<void> {
  const podId = templatePodId(name);
  if (await store.exists(podId)) await deletePod(podId, { ...options, force: true });
  await templates.removeCreating(name);
}

async function openTemplates(store: PodStore, options: CallOptions): Promise<TemplateStore> {
  await store.checkRoot();
  const templates = new TemplateStore(store.root);
  await templates.ensureDir();
  await removeTemplateLeftovers(options);
  return templates;
}

/** The built-in VMM, checked: UNSUPPORTED for QEMU, asked for or the only one this host runs. */
async function templateHypervisor(choice: 'auto' | 'qemu' | 'kvm', options: CallOptions): Promise<Hypervisor> {
  if (choice === 'qemu') throw unsupported('hypervisor is "qemu"');
  // With an injected factory (tests, embedders) the factory's kvm is used as it is.
  if (!options.hypervisor && choice === 'auto' && resolveHypervisorKind('auto') !== 'kvm') {
    throw unsupported('hypervisor "auto" picks qemu on this host (its /dev/kvm cannot run stock guests)');
  }
  const hypervisor = hypervisorOf(options, 'kvm');
  checkCanTemplate(hypervisor);
  try {
    await hypervisor.check();
  } catch (err) {
    throw unsupported(`the built-in VMM cannot run here: ${(err as Error).message}`);
  }
  return hypervisor;
}

/** Running pods restored from each template, by template name. */
async function templateUsers(store: PodStore): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  for (const id of await store.ids()) {
    const record: PodRecord | null = await store.read(id).catch(() => null);
    const name = record?.config.template;
    // A pod mid-start may be restoring from it already.
    if (!record || name === undefined || !(hasVmm(record) || record.state === 'starting')) continue;
    users.set(name, [...(users.get(name) ?? []), id]);
  }
  return users;
}

function infoOf(t: TemplateRecord, usedBy: string[]): TemplateInfo {
  return { name: t.name, vcpus: t.vcpus, memoryMiB: t.memoryMiB, vmmVersion: t.vmmVersion, createdAt: t.createdAt, kernel: t.kernel, bytes: t.bytes, usedBy };
}
