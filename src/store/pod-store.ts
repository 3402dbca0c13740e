// Pod records on disk: one directory per pod, state.json written atomically, a lock file per pod.
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { PodRecord } from '../model/records.js';
import { VcError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { podPaths, type PodPaths } from './paths.js';

export class PodStore {
  constructor(readonly root: string) {}

  paths(id: string): PodPaths {
    return podPaths(this.root, id);
  }

  /** Creates the pod directory with its first state, all at once: a temp dir renamed into place. */
  async create(record: PodRecord): Promise<void> {
    const podsDir = join(this.root, 'pods');
    await mkdir(podsDir, { recursive: true, mode: 0o700 });
    const temp = join(podsDir, `.new-${record.id}-${randomBytes(4).toString('hex')}`);
    await mkdir(temp, { mode: 0o700 });
    try {
      await writeFileAtomic(join(temp, 'state.json'), JSON.stringify(record, null, 2));
      await rename(temp, this.paths(record.id).dir);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') {
        throw new VcError('POD_EXISTS', `pod ${record.id} already exists in ${this.root}`);
      }
      throw err;
    }
  }

  async read(id: string): Promise<PodRecord> {
    const path = this.paths(id).state;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new VcError('POD_NOT_FOUND', `pod ${id} does not exist in ${this.root}`);
      }
      throw err;
    }
    try {
      const record = JSON.parse(text) as PodRecord;
      if (record.version !== 1 || record.id !== id) throw new Error(`version ${record.version}, id ${record.id}`);
      return record;
    } catch (err) {
      throw new VcError('STATE_CORRUPT', `state of pod ${id} (${path}) is unreadable: ${(err as Error).message}`, { cause: err });
    }
  }

  async write(record: PodRecord): Promise<void> {
    record.updatedAt = new Date().toISOString();
    await writeFileAtomic(this.paths(record.id).state, JSON.stringify(record, null, 2));
  }

  async remove(id: string): Promise<void> {
    await rm(this.paths(id).dir, { recursive: true, force: true });
  }

  async ids(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(join(this.root, 'pods'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names.filter((name) => !name.startsWith('.')).sort();
  }
}
