// Container records on disk, inside their pod's directory: pods/<pod>/containers/<id>.json.
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RECORD_VERSION, type ContainerRecord } from '../model/records.js';
import { VcError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { removeManifest } from './mount-manifest.js';
import { checkRecord } from './record-version.js';
import type { PodStore } from './pod-store.js';

export class ContainerStore {
  constructor(private readonly pods: PodStore) {}

  private dir(podId: string): string {
    return join(this.pods.paths(podId).dir, 'containers');
  }

  private path(podId: string, id: string): string {
    return join(this.dir(podId), `${id}.json`);
  }

  async exists(podId: string, id: string): Promise<boolean> {
    return readFile(this.path(podId, id)).then(() => true, () => false);
  }

  async read(podId: string, id: string): Promise<ContainerRecord> {
    let text: string;
    try {
      text = await readFile(this.path(podId, id), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new VcError('CONTAINER_NOT_FOUND', `container ${id} does not exist in pod ${podId}`);
      }
      throw err;
    }
    return checkRecord<ContainerRecord>(text, this.path(podId, id), `container ${id} in pod ${podId}`, (record) => {
      if (record.id !== id || record.podId !== podId) throw new Error(`it names container ${JSON.stringify(record.id)} of pod ${JSON.stringify(record.podId)}`);
    });
  }

  /** Makes the containers directory if needed, never the pod's: a deleted pod stays deleted. */
  async write(record: ContainerRecord): Promise<void> {
    record.version = RECORD_VERSION;
    await mkdir(this.dir(record.podId), { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await writeFileAtomic(this.path(record.podId, record.id), JSON.stringify(record, null, 2), { createDir: false, mode: 0o600 });
  }

  async remove(podId: string, id: string): Promise<void> {
    await removeManifest(this.pods, podId, id);
    await rm(this.path(podId, id), { force: true });
  }

  async ids(podId: string): Promise<string[]> {
    try {
      return (await readdir(this.dir(podId))).filter((n) => n.endsWith('.json') && !n.startsWith('.')).map((n) => n.slice(0, -5)).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}
