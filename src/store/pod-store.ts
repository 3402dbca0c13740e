// Pod records on disk: one directory per pod, state.json written atomically, a lock file per pod.
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { RECORD_VERSION, type PodRecord } from '../model/records.js';
import { VcError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { checkRecord } from './record-version.js';
import { podPaths, type PodPaths } from './paths.js';
import { untrustedDir } from './ownership.js';

export class PodStore {
  /** Set once the root was found to be ours and private (an absent root is checked again later). */
  private rootTrusted = false;

  constructor(readonly root: string) {}

  /**
   * STATE_UNSAFE unless the root is a directory this process owns that nobody else may write: its
   * records say which processes to kill and which sockets to trust. An absent root passes (there
   * is nothing in it; create makes it 0700).
   */
  async checkRoot(): Promise<void> {
    if (this.rootTrusted) return;
    const reason = await untrustedDir(this.root);
    if (reason) throw new VcError('STATE_UNSAFE', `state root refused: ${reason}`);
    this.rootTrusted = await stat(this.root).then(() => true, () => false);
  }

  paths(id: string): PodPaths {
    return podPaths(this.root, id);
  }

  /** Creates the pod directory with its first state, all at once: a temp dir renamed into place. */
  async create(record: PodRecord): Promise<void> {
    const podsDir = join(this.root, 'pods');
    await this.checkRoot(); // before mkdir, which would make pods/ in another user's root
    await mkdir(podsDir, { recursive: true, mode: 0o700 });
    await this.checkRoot(); // the root as mkdir found or made it
    const temp = join(podsDir, `.new-${record.id}-${randomBytes(4).toString('hex')}`);
    await mkdir(temp, { mode: 0o700 });
    try {
      await writeFileAtomic(join(temp, 'state.json'), JSON.stringify(record, null, 2), { mode: 0o600 });
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
    await this.checkRoot();
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
    return checkRecord<PodRecord>(text, path, `pod ${id}`, (record) => {
      if (record.id !== id) throw new Error(`it names pod ${JSON.stringify(record.id)}`);
      if (typeof record.state !== 'string' || typeof record.config !== 'object' || record.config === null) {
        throw new Error('it has no state or config');
      }
    });
  }

  /** Never recreates a removed pod directory: a write to a deleted pod fails (ENOENT). */
  async write(record: PodRecord): Promise<void> {
    await this.checkRoot();
    record.version = RECORD_VERSION;
    record.updatedAt = new Date().toISOString();
    await writeFileAtomic(this.paths(record.id).state, JSON.stringify(record, null, 2), { createDir: false, mode: 0o600 });
  }

  /**
   * Renames the directory out of the way first (atomic: from then on the pod does not exist, and
   * its id can be reused at once), then removes it. A removal that dies part-way leaves a
   * `.deleted-*` directory for gc.
   */
  async remove(id: string): Promise<void> {
    await this.checkRoot();
    const dir = this.paths(id).dir;
    const doomed = join(this.root, 'pods', `.deleted-${id}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(dir, doomed);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  /** True when the pod's directory exists (whatever its record says, if anything). */
  async exists(id: string): Promise<boolean> {
    return stat(this.paths(id).dir).then((st) => st.isDirectory(), () => false);
  }

  async ids(): Promise<string[]> {
    await this.checkRoot();
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
