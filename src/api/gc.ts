// The leak sweeper: finds what belongs to no pod and removes it, saying what each thing was. Pods
// whose lock is free are settled first (an interrupted step finished or undone), so what is left
// over afterwards is a true leak: a VMM whose pod directory is gone, a cgroup with no pod, stale
// sockets and lease files of pods that are not running, temp files of writes cut short, and image
// disks that no container uses and nobody has used for a while.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cachedImages, imagesDirOf, removeImage } from '../guest/image/index.js';
import { podCgroupParents, removePodCgroup } from '../host/cgroup.js';
import { processArgv, processesNaming, signalProcess, waitForExit } from '../host/process.js';
import type { PodRecord } from '../model/records.js';
import { isPodStep } from '../model/states.js';
import { ContainerStore } from '../store/container-store.js';
import { tryLock } from '../store/lock.js';
import type { PodStore } from '../store/pod-store.js';
import { hypervisorOf, storeFor, type CallOptions } from './context.js';
import { allHypervisors, hasVmm, settledPod } from './recover.js';
import { cniDel, DEFAULT_NETWORK_NAME, defaultConflist, ipamDataDir, ipamLeases, isNetns, planAttachment, removeNetns } from '../network/index.js';
import { tearDownNetwork } from './pod-network.js';
import { removeTemplateLeftovers } from './template.js';
import { TemplateStore } from '../store/template-store.js';

export interface GcOptions extends CallOptions {
  /** Report only; remove nothing. */
  dryRun?: boolean;
  /** Images unused for longer than this are removed (default 24 h). */
  imageMaxAgeMs?: number;
  /** Temp files, empty cgroups and half-removed directories younger than this are left (default 60 s): they may be in use. */
  graceMs?: number;
  /** The image cache to sweep (default the one resolveImage uses). */
  cacheDir?: string;
  /**
   * The `virtcontainers` cgroup parents to sweep (default this host's, one per hierarchy); `[]`
   * skips the cgroup sweep. For tests, which must not remove groups that other pods on the host
   * (or tests running beside them) are setting up.
   */
  cgroupParents?: string[];
}

export interface GcItem {
  kind: 'pod' | 'process' | 'cgroup' | 'file' | 'directory' | 'image';
  /** What it was and why it is a leak. */
  what: string;
  path?: string;
  pid?: number;
  /** False in a dry run, or when removing it failed (then `error` says why). */
  removed: boolean;
  error?: string;
}

export interface GcReport {
  dryRun: boolean;
  items: GcItem[];
}

const DAY_MS = 24 * 60 * 60 * 1000;

export async function gc(options: GcOptions = {}): Promise<GcReport> {
  const store = storeFor(options);
  const dryRun = options.dryRun === true;
  const graceMs = options.graceMs ?? 60_000;
  const items: GcItem[] = [];
  const act = async (item: Omit<GcItem, 'removed'>, remove: () => Promise<unknown>): Promise<void> => {
    if (dryRun) return void items.push({ ...item, removed: false });
    try {
      await remove();
      items.push({ ...item, removed: true });
    } catch (err) {
      items.push({ ...item, removed: false, error: (err as Error).message });
    }
  };

  // Templates a crashed maker left half-made go whole (their pod with them), before the pod sweep.
  if (!dryRun) {
    for (const name of await removeTemplateLeftovers(options)) items.push({ kind: 'directory', what: `template ${name}: left half-made by a create that died; removed with its pod`, removed: true });
  } else {
    for (const name of await new TemplateStore(store.root).leftovers()) items.push({ kind: 'directory', what: `template ${name}: left half-made by a create that died`, removed: false });
  }
  const inUse = new Set<string>();
  for (const id of await store.ids()) await sweepPod(store, id, options, dryRun, items, act, inUse);
  // Cgroups first: removing a group kills its processes with it. The other way round, the orphan
  // sweep killed a VMM and left its group empty and too young for this run (the grace period), so
  // a dry run promised a removal that gc did not do, and the group stayed for a later gc.
  await sweepCgroups(store, options.cgroupParents ?? podCgroupParents(), graceMs, act);
  await sweepOrphanProcesses(store, options, act);
  await sweepTemps(store, graceMs, act);
  await sweepIpamLeases(store, act);
  const maxAge = options.imageMaxAgeMs ?? DAY_MS;
  for (const image of await cachedImages(imagesDirOf(options.cacheDir))) {
    if (inUse.has(image.digest) || Date.now() - image.lastUsedMs < maxAge) continue;
    const days = ((Date.now() - image.lastUsedMs) / DAY_MS).toFixed(1);
    await act({ kind: 'image', what: `image ${image.digest.slice(0, 19)} (${image.sizeBytes} bytes), used by no container of ${store.root}, last used ${days} days ago`, path: image.disk }, () => removeImage(image));
  }
  return { dryRun, items };
}

type Act = (item: Omit<GcItem, 'removed'>, remove: () => Promise<unknown>) => Promise<void>;

/** One pod: settled if its lock is free, then whatever of a VMM a pod without one still has. */
async function sweepPod(store: PodStore, id: string, options: GcOptions, dryRun: boolean, items: GcItem[], act: Act, inUse: Set<string>): Promise<void> {
  const paths = store.paths(id);
  const lock = await tryLock(paths.lock).catch(() => null);
  if (!lock) {
    // Busy (a call is working on it) or gone: its images count as used, nothing else is touched.
    await noteImages(store, id, inUse);
    return;
  }
  try {
    let record: PodRecord | null;
    try {
      record = await store.read(id);
    } catch (err) {
      items.push({ kind: 'pod', what: `pod ${id}: ${(err as Error).message}; remove it with deletePod(id, { force: true }) / virtc pod delete --force`, path: paths.dir, removed: false });
      await noteImages(store, id, inUse);
      return;
    }
    if (isPodStep(record.state)) {
      const what = `pod ${id}: a ${record.state} step interrupted (process ${record.step?.by.pid ?? '?'} is gone)`;
      if (dryRun) return void items.push({ kind: 'pod', what, path: paths.dir, removed: false });
      await act({ kind: 'pod', what: `${what}: settled`, path: paths.dir }, async () => {
        record = await settledPod(store, id, options);
      });
    } else if (!dryRun && hasVmm(record)) {
      record = await settledPod(store, id, options); // a VMM that died is recorded now
    }
    if (!record) return;
    await noteImages(store, id, inUse);
    if (hasVmm(record)) return;
    // Not running: any process, cgroup or socket of a VMM here is left over.
    const hypervisor = hypervisorOf(options, record.hypervisor);
    const found = await hypervisor.reap(id, paths, undefined, { dryRun: true });
    const netnsFile = join(paths.dir, 'netns');
    if (record.network || (await isNetns(netnsFile))) found.push(`network ${record.network?.plan.mode ?? 'namespace'} (${netnsFile})`);
    const leases = (await readdir(paths.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.lease')).map((n) => join(paths.dir, n));
    if (found.length + leases.length === 0) return;
    await act({ kind: 'pod', what: `pod ${id} is ${record.state} but still has: ${[...found, ...leases.map((l) => `lease ${l}`)].join('; ')}`, path: paths.dir }, async () => {
      await hypervisor.reap(id, paths);
      for (const lease of leases) await rm(lease, { force: true });
      if (record?.network) {
        await tearDownNetwork(record);
        await store.write(record);
      }
      await removeNetns({ path: netnsFile, owned: true });
    });
  } finally {
    await lock.release();
  }
}

async function noteImages(store: PodStore, id: string, inUse: Set<string>): Promise<void> {
  const containers = new ContainerStore(store);
  for (const cid of await containers.ids(id)) {
    const record = await containers.read(id, cid).catch(() => undefined);
    if (record) inUse.add(record.image.digest);
  }
  const pod = await store.read(id).catch(() => undefined);
  for (const container of pod?.config.containers ?? []) if (container.image?.startsWith('sha256:')) inUse.add(container.image);
}

/** VMM processes naming a pod directory of this root that no longer exists. */
async function sweepOrphanProcesses(store: PodStore, options: GcOptions, act: Act): Promise<void> {
  const podsDir = join(store.root, 'pods');
  for (const pid of await processesNaming(`${podsDir}/`)) {
    const argv = await processArgv(pid);
    // Only the arguments that name the pods directory: slicing one that does not (indexOf -1) took
    // e.g. "tainers" from QEMU's -kernel path as the pod id, and the VMM of a live pod was killed.
    const id = argv?.filter((arg) => arg.includes(`${podsDir}/`)).map((arg) => arg.slice(arg.indexOf(`${podsDir}/`) + podsDir.length + 1)).find((rest) => rest.includes('/'))?.split('/')[0];
    if (!id || id.startsWith('.') || (await store.exists(id))) continue;
    // Only a VMM: an argument naming what only a VMM of that pod names (its QMP socket, its config).
    const paths = store.paths(id);
    if (!allHypervisors(options).some((h) => argv!.some((arg) => arg.includes(h.resources(id, paths).marker)))) continue;
    await act({ kind: 'process', what: `process ${pid} (${argv?.[0]?.split('/').pop()}) of pod ${id}, whose directory is gone`, pid }, async () => {
      signalProcess(pid, 'SIGKILL');
      if (!(await waitForExit(pid, 5000))) throw new Error(`process ${pid} did not exit after SIGKILL`);
    });
  }
}

/**
 * Groups under virtcontainers/ that no pod of this root owns: those whose processes name a pod
 * directory of this root that is gone, and empty ones older than the grace period. A group whose
 * processes belong to another state root is that root's business.
 */
async function sweepCgroups(store: PodStore, parents: readonly string[], graceMs: number, act: Act): Promise<void> {
  const podsDir = join(store.root, 'pods');
  for (const parent of parents) {
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      const dir = join(parent, name);
      if (!(await stat(dir).then((st) => st.isDirectory(), () => false))) continue;
      const procs = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
      if (procs.length === 0) {
        const age = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now());
        if (age < graceMs) continue;
        await act({ kind: 'cgroup', what: `cgroup ${name}: empty, no VMM in it`, path: dir }, () => removePodCgroup([dir]));
        continue;
      }
      const owners = await Promise.all(procs.map(async (pid) => (await processArgv(pid))?.find((arg) => arg.includes(`${podsDir}/`))));
      const ours = owners.filter((arg): arg is string => arg !== undefined);
      if (ours.length === 0) continue;
      const id = ours[0]!.slice(ours[0]!.indexOf(`${podsDir}/`) + podsDir.length + 1).split('/')[0]!;
      if (await store.exists(id)) continue;
      await act({ kind: 'cgroup', what: `cgroup ${name} of pod ${id}, whose directory is gone (its ${procs.length} process(es) killed)`, path: dir }, () => removePodCgroup([dir]));
    }
  }
}

/** Half-made pod directories (.new-*), half-removed ones (.deleted-*), and temp files of atomic writes. */
async function sweepTemps(store: PodStore, graceMs: number, act: Act): Promise<void> {
  const podsDir = join(store.root, 'pods');
  const old = async (path: string) => Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? Date.now()) >= graceMs;
  for (const name of await readdir(podsDir).catch(() => [] as string[])) {
    const path = join(podsDir, name);
    if (name.startsWith('.new-') || name.startsWith('.deleted-')) {
      if (!(await old(path))) continue;
      const what = name.startsWith('.new-') ? 'a pod directory whose create was cut short' : 'a pod directory whose removal was cut short';
      await act({ kind: 'directory', what, path }, async () => {
        await removeNetns({ path: join(path, 'netns'), owned: true }); // a mounted one cannot be unlinked
        await rm(path, { recursive: true, force: true });
      });
      continue;
    }
    for (const dir of [path, join(path, 'containers')]) {
      for (const file of await readdir(dir).catch(() => [] as string[])) {
        if (!(file.startsWith('.') && file.endsWith('.tmp'))) continue;
        const temp = join(dir, file);
        if (await old(temp)) await act({ kind: 'file', what: 'the temp file of a write cut short', path: temp }, () => rm(temp, { force: true }));
      }
    }
  }
}

/**
 * Addresses the default network's IPAM still leases to pods that no longer exist (their CNI DEL
 * never ran): released with a DEL of the pod's attachment (no namespace: it went with the pod).
 */
async function sweepIpamLeases(store: PodStore, act: Act): Promise<void> {
  const dataDir = ipamDataDir(store.root);
  const pods = new Set(await store.ids());
  for (const lease of await ipamLeases(dataDir, DEFAULT_NETWORK_NAME)) {
    // Read again: a pod created (and started) since the list was taken has its lease rightly.
    if (!lease.containerId || pods.has(lease.containerId) || (await store.exists(lease.containerId))) continue;
    const attachment = planAttachment(lease.containerId, '', defaultConflist({ dataDir }), lease.ifName || undefined);
    await act({ kind: 'file', what: `IPAM lease of ${lease.address} held for pod ${lease.containerId}, which no longer exists`, path: lease.path },
      () => cniDel(attachment));
  }
}
