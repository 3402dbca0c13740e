// Generative test of the layer reader: a seeded PRNG builds random stacks of layers mixing valid
// entries with hostile ones (".." and absolute names, symlinks and hardlinks pointing outside,
// devices, set-id modes, odd whiteouts, duplicates, non-UTF-8 and long names, bad sizes, cut and
// corrupted archives; one layer in ten gzip-compressed) from a small alphabet of names, so entries keep meeting each other. Whatever
// happens, the invariants of docs/images-and-rootfs.md hold: nothing outside the root changes, the
// tree has no device node and set-id bits only where the rules allow, nothing hangs, and a refusal
// is a GuestError with an image code naming an entry. The rule for each single case is checked by
// layer-hostile.test.ts. VC_TARFUZZ_SEED, VC_TARFUZZ_RUNS and VC_TARFUZZ_MAX_MS replay or lengthen a run.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { GuestError } from '../../../../src/guest/errors.js';
import { badRefusal, extract, makeSandbox, prng, rawTar, removeSandbox, snapshotOutside, treeViolations, type Prng, type RawEntry, type Sandbox } from './hostile-tar.js';

// tmpfs when there is one: rmdir on this host's disk costs ≈ 9 ms, most of a run's time.
const scratch = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'vc-layer-fuzz-'));
test.after(() => rmSync(scratch, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
const SEED = Number(process.env.VC_TARFUZZ_SEED ?? 17);
// ≈ 3 s here (2 cores, 150-200 runs/s); on a loaded host the run also stops after MAX_MS (at
// least MIN_RUNS done). The runs are the same sequence either way, so a seed and run replay.
const RUNS = Number(process.env.VC_TARFUZZ_RUNS ?? 500);
const MAX_MS = Number(process.env.VC_TARFUZZ_MAX_MS ?? 4000);
const MIN_RUNS = Math.min(RUNS, 100);

// Valid entries use DIRS as directories and LEAVES for everything else, so they seldom clash, but
// a symlink may take a DIRS name (as /lib -> usr/lib does), so later entries meet symlinked
// parents; hostile ones mix in any name (a file where a directory was, ODD names).
const DIRS = ['a', 'b', 'c'];
const LEAVES = ['f', 'g', 's'];
const ODD: Array<string | Buffer> = ['..', '.', '', '.wh.a', '.wh.f', '.wh..wh..opq', '.wh.', '.wh..', '.wh...', '.wh..wh.plnk',
  Buffer.from([0x63, 0xe9]), Buffer.from([0xc0, 0xae, 0xc0, 0xae]), 'x'.repeat(200), 'y'.repeat(256)];

const join2 = (parts: Array<string | Buffer>) => Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from('/'), Buffer.from(p)] : [Buffer.from(p)])));

function randomName(r: Prng, box: Sandbox, hostile: boolean, isDir: boolean): Buffer {
  const depth = r.int(3);
  const parts: Array<string | Buffer> = Array.from({ length: depth }, () => (!hostile || r.chance(0.7) ? r.pick(DIRS) : r.pick(ODD)));
  if (hostile) parts.push(r.chance(0.5) ? r.pick([...DIRS, ...LEAVES]) : r.pick(ODD));
  else parts.push(isDir ? r.pick(DIRS) : r.pick(LEAVES));
  let name = join2(parts);
  if (hostile && r.chance(0.1)) name = Buffer.concat([Buffer.from(`${box.outside}/`), name]);
  else if (r.chance(0.05)) name = Buffer.concat([Buffer.from('./'), name]);
  if (isDir && r.chance(0.1)) name = Buffer.concat([name, Buffer.from('/')]);
  return name;
}

/** Symlink targets: anything (a symlink to outside is allowed; only writing through it is not). */
const SYMLINK_TARGETS = ['..', '../..', '../../..', '../outside', '../outside/keep', '.', 'a', 'a/b', 'missing', 'd/../..'];
const HOSTILE_LINK_TARGETS = ['..', '../outside/keep', '../../l2/outside/keep', '', 'a', '.', 'a/..', 'missing'];

function randomTarget(r: Prng, box: Sandbox, type: string, hostile: boolean, files: Buffer[]): Buffer {
  if (type === '1' && !hostile && files.length) return r.pick(files);
  if (files.length && r.chance(0.3)) return r.pick(files);
  if (hostile || type === '1') return Buffer.from(r.pick([...HOSTILE_LINK_TARGETS, `${box.outside}/keep`, box.outside]));
  return Buffer.from(r.chance(0.2) ? r.pick([box.outside, `${box.outside}/keep`]) : r.pick(SYMLINK_TARGETS));
}

const MODES = [0o644, 0o755, 0o600, 0o4755, 0o2755, 0o6777, 0o1777, 0o7777, 0o000];

// Mostly entries a real layer could hold; one in eight is hostile in some way. Fifos are rare:
// each costs a process (mkfifo).
const TYPES = ['0', '0', '0', '0', '0', '5', '5', '5', '5', '2', '2', '1', '7'];
const HOSTILE_TYPES = ['0', '5', '2', '1', '3', '4', 'S', 'V', 'D', 'g'];

function randomEntry(r: Prng, box: Sandbox, files: Buffer[]): RawEntry {
  const hostile = r.chance(1 / 8);
  let type = hostile ? r.pick(HOSTILE_TYPES) : r.chance(0.003) ? '6' : r.pick(TYPES);
  if (type === '1' && !hostile && files.length === 0) type = '0';
  const name = randomName(r, box, hostile, type === '5' || (type === '2' && r.chance(0.3)));
  const e: RawEntry = { name, type, mode: r.chance(0.7) ? r.pick(MODES) : r.int(0o10000), uid: r.chance(0.8) ? 0 : r.pick([1000, 65534, 0o7777777]), gid: 0 };
  if (type === '0' || type === '7' || type === 'S') e.data = Buffer.alloc(r.int(r.chance(0.1) ? 3000 : 64), r.int(256));
  if (type === '0' || type === '7') files.push(name);
  if (type === '1' || type === '2') e.linkname = randomTarget(r, box, type, hostile, files);
  if (type === '3' || type === '4') Object.assign(e, { devmajor: r.pick([1, 8, 0o7777777]), devminor: r.int(10) });
  // How the name is spelled in the tar: the name field, a pax path, a GNU long name, or ustar prefix + name.
  const spelling = r.int(10);
  if (name.length > 100 || spelling === 0) {
    e.pax = { path: name };
    e.name = 'PaxName';
  } else if (spelling === 1) {
    e.longName = name;
    e.name = '././@LongLink-name';
  } else if (spelling === 2 && name.includes(0x2f)) {
    const slash = name.indexOf(0x2f);
    e.prefix = name.subarray(0, slash);
    e.name = name.subarray(slash + 1);
  }
  if (e.linkname && (e.linkname.length > 100 || r.chance(0.1))) {
    e.longLink = e.linkname;
    e.linkname = 'short';
  }
  if (r.chance(0.03)) e.pax = { ...e.pax, 'SCHILY.xattr.security.capability': 'x' };
  if (!hostile) return e;
  if (r.chance(0.1)) e.pax = { ...e.pax, uid: r.pick(['4294967296', '-1', '12x', '3000000']) };
  // Hostile sizes: larger than the data, unparsable, negative; data on entries that have none.
  const sizeTrick = r.int(12);
  if (sizeTrick === 0) e.size = (e.data?.length ?? 0) + 1 + r.int(2000);
  if (sizeTrick === 1) e.size = Buffer.from([0x80 + 1 + r.int(0x7e), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, r.int(256)]);
  if (sizeTrick === 2) e.size = -1 - r.int(1000);
  if (sizeTrick === 3 && !e.data) e.data = 'data where none belongs';
  if (r.chance(0.05)) e.mtime = Buffer.from([0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  if (r.chance(0.05)) e.badChecksum = true;
  return e;
}

function randomLayer(r: Prng, box: Sandbox, names: Buffer[], files: Buffer[]): Buffer {
  const entries: RawEntry[] = [];
  for (let i = 0, n = 1 + r.int(10); i < n; i++) {
    const e = randomEntry(r, box, files);
    names.push(e.pax?.path ? Buffer.from(e.pax.path) : e.longName ? Buffer.from(e.longName) : Buffer.from(e.name));
    entries.push(e);
  }
  let blob = rawTar(entries, { end: !r.chance(0.05) });
  if (r.chance(0.03)) blob = blob.subarray(0, r.int(blob.length));
  if (r.chance(0.03)) {
    blob = Buffer.from(blob);
    blob[r.int(blob.length)]! ^= 1 + r.int(255);
  }
  return r.chance(0.1) ? gzipSync(blob, { level: 1 }) : blob;
}

test(`random layers keep the invariants (seed ${SEED}, up to ${RUNS} runs or ${MAX_MS} ms)`, async () => {
  const r = prng(SEED);
  const tally = { extracted: 0, refused: 0, entries: 0, byCode: new Map<string, number>() };
  const start = performance.now();
  let runs = 0;
  for (let run = 0; run < RUNS && (run < MIN_RUNS || performance.now() - start < MAX_MS); run++, runs++) {
    const box = makeSandbox(join(scratch, `run${run}`));
    const before = snapshotOutside(box);
    const names: Buffer[] = [];
    const files: Buffer[] = [];
    const layers = Array.from({ length: 1 + r.int(3) }, () => randomLayer(r, box, names, files));
    const privileged = isRoot && r.chance(0.5);
    const { tree, error } = await extract(box.root, layers, privileged, 2000);
    const where = `seed ${SEED} run ${run} (replay: VC_TARFUZZ_SEED=${SEED} VC_TARFUZZ_RUNS=${run + 1} VC_TARFUZZ_MAX_MS=1e9; privileged ${privileged}; names ${names.map((n) => JSON.stringify(n.toString('latin1').slice(0, 40))).join(' ')})`;
    const problems: string[] = [];
    if (error) {
      const bad = badRefusal(error);
      if (bad) problems.push(bad);
      tally.refused++;
      const code = (error as GuestError).code;
      tally.byCode.set(code, (tally.byCode.get(code) ?? 0) + 1);
    } else {
      tally.extracted++;
      tally.entries += tree!.stats.entries;
    }
    if (JSON.stringify(snapshotOutside(box)) !== JSON.stringify(before)) problems.push(`changed something outside the root:\n${snapshotOutside(box).join('\n')}`);
    problems.push(...treeViolations(box.root));
    if (problems.length) {
      // Keep the layers for a look with tar -tvf, or for a case in layer-hostile.test.ts.
      const kept = layers.map((blob, i) => {
        const path = join(tmpdir(), `vc-tarfuzz-${SEED}-${run}-layer${i + 1}.tar`);
        writeFileSync(path, blob);
        return path;
      });
      assert.unreachable(`${where}: ${problems.join('; ')}\nlayers: ${kept.join(' ')}`);
    }
    removeSandbox(box);
  }
  const seconds = (performance.now() - start) / 1000;
  const codes = [...tally.byCode].map(([c, k]) => `${c} ${k}`).join(', ');
  console.log(`# layer fuzz: ${runs} runs in ${seconds.toFixed(2)} s (${Math.round(runs / seconds)}/s): ${tally.extracted} extracted (${tally.entries} entries), ${tally.refused} refused (${codes})`);
  // Both outcomes must be common, or the generator has drifted into testing only one path.
  assert.ok(tally.extracted > runs / 10 && tally.refused > runs / 10, `extracted ${tally.extracted}, refused ${tally.refused}`);
});

test.run();
