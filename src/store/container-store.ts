// Container records on disk, inside their pod's directory: pods/<pod>/containers/<id>.json.
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerRecord } from '../model/records.js';
import { VcError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
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
    try {
      return JSON.parse(text) as ContainerRecord;
    } catch (err) {
      throw new VcError('STATE_CORRUPT', `state of container ${id} in pod ${podId} is unreadable: ${(err as Error).message}`, { cause: err });
    }
  }

  async write(record: ContainerRecord): Promise<void> {
    await writeFileAtomic(this.path(record.podId, record.id), JSON.stringify(record, null, 2));
  }

  async remove(podId: string, id: string): Promise<void> {
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
