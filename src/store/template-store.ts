// Templates on disk: <root>/templates/<name>/{template.json,state,memory}, made in
// <name>.creating/ and renamed into place once whole (crash-only: a `.creating` directory is a
// template whose maker died, removed by the next template call or gc). A lock file per name.
import { chown, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { VcError } from '../errors.js';
import { parseTemplateRecord, TEMPLATE_NAME_PATTERN, type TemplateRecord } from '../model/template.js';
import { syncDirectory, writeFileAtomic } from './atomic.js';

const CREATING = '.creating';

export interface TemplatePaths {
  dir: string;
  record: string;
  state: string;
  memory: string;
}

export class TemplateStore {
  readonly dir: string;

  constructor(readonly root: string) {
    this.dir = join(root, 'templates');
  }

  /** The lock of one template name: held while it is made or deleted, and while a leftover of it is removed. */
  lock(name: string): string {
    return join(this.dir, `${name}.lock`);
  }

  paths(name: string): TemplatePaths {
    return filesIn(join(this.dir, name));
  }

  /** Where a template is made before it is renamed to paths(name).dir. */
  creating(name: string): TemplatePaths {
    return filesIn(join(this.dir, `${name}${CREATING}`));
  }

  async ensureDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Names of whole templates (not `.creating` ones), sorted. */
  async names(): Promise<string[]> {
    const entries = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && TEMPLATE_NAME_PATTERN.test(e.name)).map((e) => e.name).sort();
  }

  /** Templates a crash left half-made: their names. */
  async leftovers(): Promise<string[]> {
    const entries = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && e.name.endsWith(CREATING)).map((e) => e.name.slice(0, -CREATING.length)).sort();
  }

  async exists(name: string): Promise<boolean> {
    return stat(this.paths(name).record).then(() => true, () => false);
  }

  /** TEMPLATE_NOT_FOUND, naming the template and the directory, when there is none. */
  async read(name: string): Promise<TemplateRecord> {
    const path = this.paths(name).record;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new VcError('TEMPLATE_NOT_FOUND', `template ${JSON.stringify(name)} not found in ${this.dir}`);
    }
    const record = parseTemplateRecord(text, path);
    if (record.name !== name) throw new VcError('STATE_CORRUPT', `${path}: name is ${JSON.stringify(record.name)}, not ${JSON.stringify(name)}`);
    return record;
  }

  /** Seals a template made in creating(name): its record written, then the directory renamed into place. */
  async finish(record: TemplateRecord): Promise<void> {
    const from = this.creating(record.name);
    // A jailed VMM wrote the snapshot as its unprivileged user: from now on nothing but root (the
    // library) may touch a template, and no one writes it.
    if (process.getuid?.() === 0) {
      for (const path of [from.dir, from.state, from.memory]) await chown(path, 0, 0);
    }
    await writeFileAtomic(from.record, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
    await syncDirectory(from.dir);
    await rename(from.dir, this.paths(record.name).dir);
    await syncDirectory(this.dir);
  }

  async removeCreating(name: string): Promise<void> {
    await rm(this.creating(name).dir, { recursive: true, force: true });
  }

  /** Moved aside first, so a crash mid-removal leaves a `.creating` leftover, never half a template. */
  async remove(name: string): Promise<void> {
    await rename(this.paths(name).dir, this.creating(name).dir);
    await this.removeCreating(name);
  }
}

function filesIn(dir: string): TemplatePaths {
  return { dir, record: join(dir, 'template.json'), state: join(dir, 'state'), memory: join(dir, 'memory') };
}
