// Generative test of the outer archive reader (tar-index.ts) and the manifest, index and config
// parsing behind it (docker-archive.ts, oci.ts, config.ts): a seeded PRNG builds a small valid
// docker-archive or oci-archive, then maybe spells it in other valid ways (pax and GNU long names,
// ustar prefixes, "./" and "/" prefixes, blobs behind symlinks and hardlinks, base-256 sizes, no
// end blocks, padding, unrelated members), maybe breaks its tar (checksums, sizes, truncation,
// "..", NUL and absolute names, escaping and looping links, duplicates, data on directories and
// links, lone zero blocks, huge extended headers) and maybe its JSON (wrong types, missing
// fields, huge or deeply nested documents, escaping or missing paths, digests that do not match,
// unknown media types). Whatever the input: a benign one reads back the image it was made from; any
// other is read (every layer byte coming from the archive) or refused with an image GuestError that
// names the archive and matches a documented rule; nothing hangs. archive-hostile.test.ts checks
// each rule on one case. VC_ARCHIVEFUZZ_SEED, _RUNS and _MAX_MS replay or lengthen a run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { GuestError } from '../../../../src/guest/errors.js';
import { prng, rawTar, type Prng, type RawEntry } from './hostile-tar.js';
import { badArchiveRefusal, configDoc, dockerMembers, layerTar, ociMembers, readArchive, readOutside, sha, type Kind, type Member } from './hostile-archive.js';

const scratch = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'vc-archive-fuzz-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const SEED = Number(process.env.VC_ARCHIVEFUZZ_SEED ?? 17);
// The run stops after RUNS inputs or MAX_MS (at least MIN_RUNS done; 200 take ≈ 1-2 s on a loaded
// 2-core host; 3 s are ≈ 500-1400 runs): the inputs are the same sequence either way, so a seed and
// a run number replay one.
const RUNS = Number(process.env.VC_ARCHIVEFUZZ_RUNS ?? 5000);
const MAX_MS = Number(process.env.VC_ARCHIVEFUZZ_MAX_MS ?? 3000);
const MIN_RUNS = Math.min(RUNS, 200);

/** Stands for a value that JSON.stringify cannot write (it recurses): replaced in the text. */
const DEEP = '\u0001deep\u0001';
const HOSTILE_VALUES: unknown[] = [null, 0, -1, 1.5, 2 ** 60, true, '', 'x', '../../etc/passwd', '/etc/passwd', 'a/../../b', 'a\u0000b',
  'manifest.json', 'index.json', '.', './', [], {}, [1, 'a'], { toString: 1 }, { length: 5 }, DEEP, 'x'.repeat(300), 'l'.repeat(5000), `sha256:${'a'.repeat(5000)}`,
  Array.from({ length: 300 }, (_, i) => `t${i}:${'v'.repeat(20)}`),
  `sha256:${'0'.repeat(64)}`, `sha256:${'G'.repeat(64)}`, `sha512:${'a'.repeat(128)}`, 'sha256:', 'md5:x', 'application/vnd.unknown+json',
  'application/vnd.oci.image.index.v1+json', 'windows', 'layers'];

/** Replaces or deletes one field, anywhere in the document. */
function mutateDoc(r: Prng, doc: unknown): unknown {
  const slots: Array<[Record<string, unknown> | unknown[], string | number]> = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((x, i) => (slots.push([v, i]), walk(x)));
    else if (v && typeof v === 'object') for (const k of Object.keys(v)) slots.push([v as Record<string, unknown>, k]), walk((v as Record<string, unknown>)[k]);
  };
  walk(doc);
  if (slots.length === 0 || r.chance(0.05)) return r.pick(HOSTILE_VALUES);
  const [parent, key] = r.pick(slots);
  if (!Array.isArray(parent) && r.chance(0.2)) delete parent[key as string];
  else (parent as Record<string | number, unknown>)[key] = r.pick(HOSTILE_VALUES);
  return doc;
}

/** Whole documents that are not what a parser expects; the big ones rare, to keep runs fast. */
function hostileText(r: Prng): Buffer {
  const big = r.chance(0.1);
  const depth = big ? 200_000 : r.pick([100, 5000]);
  switch (r.int(9)) {
    case 0: return Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`);
    case 1: return Buffer.from(`{"a":${'{"a":'.repeat(depth)}1${'}'.repeat(depth + 1)}`);
    case 2: return Buffer.from('['.repeat(depth));
    case 3: return Buffer.from(`"${'s'.repeat(big ? 1 << 20 : 1000)}"`);
    case 4: return Buffer.from('\ufeff{}');
    case 5: return Buffer.from('');
    case 6: return Buffer.from([0xff, 0xfe, 0x7b, 0x7d]);
    case 7: return Buffer.from(`[${'{},'.repeat(big ? 1_100_000 : 10)}{}]`);
    default: return Buffer.from('{"a":1,"a":[');
  }
}

const serialize = (doc: unknown) => Buffer.from((JSON.stringify(doc) ?? 'undefined').replaceAll(JSON.stringify(DEEP), `${'['.repeat(5000)}${']'.repeat(5000)}`));

interface Made { members: Member[]; config: Buffer; layers: Buffer[]; jsonHostile: boolean }

/** The documents of an image, each maybe broken; digests recomputed after, unless a digest is what breaks. */
function makeImage(r: Prng, kind: Kind, jsonRate: number): Made {
  const plain = Array.from({ length: r.int(3) }, (_, i) => layerTar(`ID=${i}-${r.int(1000)}\n`));
  const layers = plain.map((tar) => (r.chance(0.2) ? gzipSync(tar, { level: 1 }) : tar));
  let jsonHostile = false;
  const maybe = <T>(doc: T): unknown => {
    if (!r.chance(jsonRate)) return doc;
    jsonHostile = true;
    return mutateDoc(r, doc);
  };
  const text = (doc: unknown): Buffer => {
    if (!r.chance(jsonRate / 4)) return serialize(doc);
    jsonHostile = true;
    return hostileText(r);
  };
  // diff_ids are of the uncompressed tars.
  const config = text(maybe(configDoc(plain)));
  const members = kind === 'docker-archive'
    ? dockerMembers(layers, { blobNames: r.chance(0.3), config, manifest: (m) => maybe(m) })
    : ociMembers(layers, { config, manifest: (m) => maybe(m), index: (i) => maybe(i) });
  // Index and manifest documents replaced whole (their digests then no longer match, for OCI manifests).
  for (const m of members) if ((m.name === 'manifest.json' || m.name === 'index.json' || m.name === 'oci-layout') && r.chance(jsonRate / 4)) m.data = hostileText(r), jsonHostile = true;
  // A blob changed after its name or descriptor was made: its digest no longer matches.
  if (r.chance(jsonRate / 4)) {
    const m = r.pick(members);
    m.data = Buffer.concat([m.data, Buffer.from(' ')]);
    jsonHostile = true;
  }
  return { members, config, layers, jsonHostile };
}

/** Valid other spellings of the same members; the archive must still read as the same image. */
function respell(r: Prng, members: Member[]): RawEntry[] {
  const entries: RawEntry[] = [];
  let stored = 0;
  for (const m of members) {
    const choice = r.int(12);
    if (choice === 0) entries.push({ name: 'PaxHeader/name', data: m.data, pax: { path: m.name } });
    else if (choice === 1) entries.push({ name: '././@LongLink-name', data: m.data, longName: m.name });
    else if (choice === 2 && m.name.includes('/')) entries.push({ name: posix.basename(m.name), prefix: posix.dirname(m.name), data: m.data });
    else if (choice === 3) entries.push({ name: `./${m.name}`, data: m.data });
    else if (choice === 4) entries.push({ name: `/${m.name}`, data: m.data });
    else if (choice === 5 || choice === 6) {
      // The blob stored elsewhere, found through a link (docker save's legacy layer.tar symlinks).
      const real = `store/${stored++}`;
      entries.push({ name: real, data: m.data });
      entries.push(choice === 5
        ? { name: m.name, type: '2', linkname: posix.relative(posix.dirname(m.name), real) }
        : { name: m.name, type: '1', linkname: real });
    } else if (choice === 7) {
      const size = Buffer.alloc(12);
      size[0] = 0x80;
      size.writeUIntBE(m.data.length, 6, 6);
      entries.push({ name: m.name, data: m.data, size });
    } else entries.push({ name: m.name, data: m.data });
    if (r.chance(0.1)) entries.splice(r.int(entries.length), 0, r.pick<RawEntry>([
      { name: 'dir/', type: '5' }, { name: 'repositories', data: '{}' }, { name: 'fifo', type: '6' }, { name: 'other/link', type: '2', linkname: '/etc/passwd' },
      { name: 'g', type: 'g', data: '' }, { name: 'VERSION', data: '1.0' },
    ]));
  }
  // The order of members is the writer's choice.
  for (let i = entries.length - 1; i > 0 && r.chance(0.5); i--) {
    const j = r.int(i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  return entries;
}

const ODD_NAMES = ['../x', '../../etc/passwd', 'a/../b', '..', '/abs/x', 'a\u0000b', 'manifest.json', 'index.json', 'x'.repeat(300)];
const ODD_LINKS = ['/etc/passwd', '../../etc/passwd', '..', '', '.', 'self', 'loop-a', 'dir', 'missing', 'a\u0000b'];

/** Breaks one member's header or adds a hostile one. */
function breakTar(r: Prng, entries: RawEntry[]): void {
  if (entries.length === 0) return void entries.push({ name: 'x', data: 'x' });
  const i = r.int(entries.length);
  const e = entries[i]!;
  const dataLength = Buffer.byteLength(e.data ?? '');
  switch (r.int(14)) {
    case 0: e.badChecksum = true; break;
    case 1: e.size = dataLength + 1 + r.int(100_000); break;
    case 2: e.size = Buffer.from([0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]); break;
    case 3: e.size = r.pick([-1, 2 ** 40, 0o77777777777]); break;
    case 4: e.size = Buffer.from(r.pick(['12 34\0      ', 'zzzzzzzzzzz\0', '\0\0\0\0\0\0\0\0\0\0\0\0'])); break;
    case 5: e.pax = { ...e.pax, path: r.pick(ODD_NAMES) }; break;
    case 6: entries.push({ ...e, data: r.chance(0.5) ? e.data : 'duplicate' }); break;
    case 7: entries.splice(i, 1, { name: e.pax?.path ?? e.longName ?? e.name, type: r.pick(['1', '2']), linkname: r.pick(ODD_LINKS) }, { name: 'loop-a', type: '2', linkname: 'loop-b' }, { name: 'loop-b', type: '2', linkname: 'loop-a' }, { name: 'self', type: '1', linkname: 'self' }); break;
    case 8: e.type = r.pick(['5', '2', '1', '3', '4', '6', '\0', 'D', 'S']); break;
    case 9: e.pax = { ...e.pax, comment: 'c'.repeat(r.chance(0.2) ? 2 << 20 : 100) }; break;
    case 10: e.pax = { ...e.pax, size: r.pick(['lots', '-1', '99999999999999999999', '1e3']) }; break;
    case 11: e.longName = r.pick(ODD_NAMES); break;
    case 12: e.magic = r.pick(['v7', 'gnu']); break;
    default: e.name = Buffer.from(r.pick(ODD_NAMES)); delete e.pax; delete e.longName; delete e.prefix;
  }
}

/** Byte-level damage to the whole archive. */
function breakBytes(r: Prng, tar: Buffer, entries: RawEntry[]): Buffer {
  switch (r.int(4)) {
    case 0: return tar.subarray(0, r.int(tar.length));
    case 1: {
      const out = Buffer.from(tar);
      out[r.int(out.length)]! ^= 1 + r.int(255);
      return out;
    }
    case 2: {
      // A lone zero block between members.
      const cut = r.int(entries.length + 1);
      return Buffer.concat([rawTar(entries.slice(0, cut), { end: false }), Buffer.alloc(512), rawTar(entries.slice(cut))]);
    }
    default: return Buffer.concat([tar, Buffer.alloc(r.int(3) * 512 + 1, 0x41)]);
  }
}

type Category = 'benign' | 'tar-hostile' | 'json-hostile' | 'both';

test(`random outer archives are read or refused by rule (seed ${SEED}, up to ${RUNS} runs or ${MAX_MS} ms)`, async () => {
  const r = prng(SEED);
  const tally = new Map<Category, { runs: number; read: number; refused: number }>();
  const rules = new Map<string, number>();
  const start = performance.now();
  let runs = 0;
  let peakRss = 0;
  for (let run = 0; run < RUNS && (run < MIN_RUNS || performance.now() - start < MAX_MS); run++, runs++) {
    const kind: Kind = r.chance(0.5) ? 'docker-archive' : 'oci-archive';
    const mode = r.int(4);
    const made = makeImage(r, kind, mode >= 2 ? 0.5 : 0);
    const entries = respell(r, made.members);
    let tarHostile = false;
    if (mode === 1 || mode === 3) {
      tarHostile = true;
      for (let k = 0, n = 1 + r.int(2); k < n; k++) breakTar(r, entries);
    }
    let tar = rawTar(entries, { end: !r.chance(0.1) });
    if (r.chance(0.1)) tar = Buffer.concat([tar, Buffer.alloc(512 * r.int(20))]);
    if (tarHostile && r.chance(0.3)) tar = breakBytes(r, tar, entries);
    const category: Category = tarHostile ? (made.jsonHostile ? 'both' : 'tar-hostile') : made.jsonHostile ? 'json-hostile' : 'benign';
    const path = join(scratch, `run${run}.tar`);
    writeFileSync(path, tar);
    const read = await readArchive(path, kind, 2000);
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    const where = `seed ${SEED} run ${run} (${kind}, ${category}; replay: VC_ARCHIVEFUZZ_SEED=${SEED} VC_ARCHIVEFUZZ_RUNS=${run + 1} VC_ARCHIVEFUZZ_MAX_MS=1e9)`;
    const problems: string[] = [];
    const t = tally.get(category) ?? { runs: 0, read: 0, refused: 0 };
    tally.set(category, t);
    t.runs++;
    if (read.error) {
      t.refused++;
      const rule: { name?: string } = {};
      const bad = badArchiveRefusal(read.error, path, rule);
      if (bad) problems.push(bad);
      else rules.set(rule.name!, (rules.get(rule.name!) ?? 0) + 1);
      if (category === 'benign') problems.push(`a valid archive was refused: ${(read.error as GuestError).message}`);
    } else {
      t.read++;
      const outside = readOutside(path, read);
      if (outside) problems.push(outside);
      if (category === 'benign') {
        if (read.plan!.digest !== sha(made.config)) problems.push(`digest ${read.plan!.digest}, the config's is ${sha(made.config)}`);
        if (read.layers!.map((l) => sha(l)).join() !== made.layers.map((l) => sha(l)).join()) problems.push('the layers read are not the layers written');
      }
    }
    if (problems.length) {
      const kept = join(tmpdir(), `vc-archivefuzz-${SEED}-${run}.tar`);
      writeFileSync(kept, tar);
      assert.unreachable(`${where}: ${problems.join('; ')}\narchive: ${kept}`);
    }
    rmSync(path);
  }
  const seconds = (performance.now() - start) / 1000;
  const kinds = [...tally].map(([c, k]) => `${c} ${k.runs} (${k.read} read, ${k.refused} refused)`).join(', ');
  const byRule = [...rules].sort((a, b) => b[1] - a[1]).map(([rule, k]) => `${rule} ${k}`).join(', ');
  console.log(`# archive fuzz: ${runs} runs in ${seconds.toFixed(2)} s (${Math.round(runs / seconds)}/s, peak RSS ${Math.round(peakRss / 2 ** 20)} MiB): ${kinds}`);
  console.log(`# refusals by rule: ${byRule}`);
  // Every category must be common, and hostile inputs both read and refused, or the generator has drifted.
  for (const c of ['benign', 'tar-hostile', 'json-hostile', 'both'] as Category[]) assert.ok((tally.get(c)?.runs ?? 0) > runs / 10, `${c}: ${tally.get(c)?.runs ?? 0} runs`);
  const hostile = [...tally].filter(([c]) => c !== 'benign').reduce((s, [, k]) => ({ read: s.read + k.read, refused: s.refused + k.refused }), { read: 0, refused: 0 });
  assert.ok(hostile.read > runs / 50 && hostile.refused > runs / 5, `hostile: ${hostile.read} read, ${hostile.refused} refused`);
  assert.ok(rules.size >= 15, `only ${rules.size} rules met: ${byRule}`);
});

test.run();
