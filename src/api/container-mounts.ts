// Keeping a container's mounts current without a shared filesystem: refreshContainerMounts puts
// into the guest what changed on the host since the last copy (the manifest beside the container's
// record says what that was) and removes what the host deleted; watchContainerMounts polls for that
// (fs.watch misses changes made through other mounts of a source, and renames over watched files).
// docs/agent-protocol.md "Binds"; README "Containers".
import { VcError } from '../errors.js';
import { ContainerStore } from '../store/container-store.js';
import { readManifest, writeManifest } from '../store/mount-manifest.js';
import { MOUNT_BYTES_LIMIT, planMounts, putEntry } from './container-files.js';
import { lockedRunningPod } from './container.js';
import { storeFor, type CallOptions } from './context.js';
import { diffMounts, hasChanges, manifestOf } from './mount-diff.js';
import { withAgent } from './pod-session.js';
import { withPodLock } from './recover.js';

export interface RefreshMountsOptions extends CallOptions {
  /** The most bytes of files the mounts may hold; default MOUNT_BYTES_LIMIT, as at create. */
  limit?: number;
}

export interface RefreshReport {
  /** Entries put into the guest (files, directories, symlinks). */
  put: number;
  /** Entries removed from the guest (a directory counts once, with what was in it). */
  removed: number;
}

/**
 * Brings the guest's copy of each mount up to date with its source: files whose inode, size,
 * mtime or ctime changed are put again (in place, so a running container sees the new content at
 * once), new entries put, deleted ones removed; owner and mode follow. Whatever the container
 * itself wrote into a writable bind is left alone unless the host changed the same path. When
 * nothing changed this only walks the sources (no lock, no agent).
 */
export async function refreshContainerMounts(podId: string, id: string, options: RefreshMountsOptions = {}): Promise<RefreshReport> {
  const store = storeFor(options);
  const containers = new ContainerStore(store);
  const limit = options.limit ?? MOUNT_BYTES_LIMIT;
  const mounts = (await containers.read(podId, id)).config.mounts ?? [];
  if (mounts.length === 0) return { put: 0, removed: 0 };
  if (!hasChanges(diffMounts(await readManifest(store, podId, id), await planMounts(mounts, limit)))) return { put: 0, removed: 0 };
  return withPodLock(store, podId, options, async () => {
    const pod = await lockedRunningPod(store, podId, options);
    const record = await containers.read(podId, id);
    if (record.state === 'creating') throw new VcError('CONTAINER_NOT_FOUND', `container ${id} in pod ${podId} is still being created`);
    // Walked again under the lock: another refresh may have done it meanwhile.
    const plans = await planMounts(record.config.mounts ?? [], limit);
    const changes = diffMounts(await readManifest(store, podId, id), plans);
    const report = { put: 0, removed: 0 };
    if (!hasChanges(changes)) return report;
    await withAgent(pod, options.signal, async (agent) => {
      const budget = { left: limit, limit };
      for (const c of changes) {
        for (const path of c.removes) {
          const r = await agent.request('remove_file', { id, bind: c.plan.index, path }, { signal: options.signal });
          if (r.removed === true) report.removed++;
        }
        for (const e of c.puts) {
          await putEntry(agent, id, c.plan, e, budget, options.signal);
          report.put++;
        }
      }
    });
    await writeManifest(store, podId, id, manifestOf(plans));
    return report;
  });
}

export interface WatchMountsOptions extends RefreshMountsOptions {
  /** How often the sources are walked; default 1000 ms (a change shows in the guest within about twice that at most). */
  intervalMs?: number;
  /** Each refresh that changed something. */
  onRefresh?: (report: RefreshReport) => void;
  /** A refresh that failed; the watcher goes on, except when the container or pod is gone (then it ends). */
  onError?: (err: Error) => void;
}

export interface MountWatcher {
  /** Stops polling; resolves once a refresh under way has finished. */
  close(): Promise<void>;
  /** Resolves when the watcher ends: closed, or the container, its pod or its VM gone. */
  readonly ended: Promise<void>;
}

const FATAL = new Set(['CONTAINER_NOT_FOUND', 'POD_NOT_FOUND', 'POD_NOT_RUNNING']);

/**
 * Refreshes the container's mounts every `intervalMs` until closed. Keeps the process alive
 * while open, as a timer does: close it.
 */
export function watchContainerMounts(podId: string, id: string, options: WatchMountsOptions = {}): MountWatcher {
  const intervalMs = options.intervalMs ?? 1000;
  if (!Number.isInteger(intervalMs) || intervalMs < 10 || intervalMs > 3_600_000) {
    throw new VcError('INVALID_CONFIG', `intervalMs: expected an integer from 10 to 3600000, got ${JSON.stringify(options.intervalMs)}`);
  }
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const ended = (async () => {
    while (!signal.aborted) {
      try {
        const report = await refreshContainerMounts(podId, id, { ...options, signal });
        if (report.put + report.removed > 0) options.onRefresh?.(report);
      } catch (err) {
        if (signal.aborted) break;
        options.onError?.(err as Error);
        if (FATAL.has((err as VcError).code)) break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, intervalMs);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  })();
  return {
    ended,
    async close() {
      stop.abort();
      await ended;
    },
  };
}
