// Who may trust a state root or a cache: only a directory this process owns that no group or other
// user may write. The rule as a pure function first, then on real directories (chown needs root:
// as another user those cases print why they cannot run).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, chownSync, lchownSync, mkdirSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { untrustedDir, untrustedDirReason, type DirFacts } from '../../../src/store/ownership.js';
import { PodStore } from '../../../src/store/pod-store.js';
import { trustedCacheDir } from '../../../src/guest/cache.js';
import { GuestError } from '../../../src/guest/errors.js';
import { VcError } from '../../../src/errors.js';
import { listPods, deletePod } from '../../../src/index.js';
import { RECORD_VERSION, type PodRecord } from '../../../src/model/records.js';
import { tempDir } from '../../helpers/tmp.js';
import { expectCode } from '../../helpers/errors.js';

const ME = process.geteuid!();
const OTHER = 54321; // a uid no test user has
const isRoot = ME === 0;
const dir = (over: Partial<DirFacts> = {}): DirFacts => ({ isDirectory: true, isSymlink: false, linkUid: ME, uid: ME, mode: 0o40700, ...over });

function record(id: string): PodRecord {
  const now = new Date().toISOString();
  return {
    version: RECORD_VERSION, id, hypervisor: 'qemu', state: 'ready', createdAt: now, updatedAt: now,
    config: { id, hypervisor: 'auto', vcpus: 1, memoryMiB: 256, network: { mode: 'none' }, containers: [] },
    boot: { kernelPath: '/k', kernelRelease: '6.1', initrdPath: '/i', initrdDigest: 'd' },
  };
}

test('the rule: ours and 0700/0755/0711 pass; another owner, group- or world-writable (sticky too), not a directory, another user\'s link: refused naming path, owner and mode', () => {
  for (const mode of [0o40700, 0o40755, 0o40711, 0o40500]) assert.is(untrustedDirReason('/r', dir({ mode }), ME), null, mode.toString(8));
  assert.is(untrustedDirReason('/r', dir({ isSymlink: true, linkUid: 0 }), ME), null, 'a link root made (/var/run → /run) is fine');
  const cases: [Partial<DirFacts>, RegExp][] = [
    [{ uid: OTHER }, new RegExp(`^/r is owned by uid ${OTHER}, not uid ${ME} \\(this process\\) \\(mode 0700\\); it must be a directory owned by uid ${ME}`)],
    [{ mode: 0o40777 }, /^\/r \(owner uid \d+, mode 0777\) is writable by its group and everyone; .*chmod go-w \/r/],
    [{ mode: 0o41777 }, /mode 1777\) is writable by its group and everyone/],
    [{ mode: 0o40775 }, /mode 0775\) is writable by its group;/],
    [{ mode: 0o40703 }, /mode 0703\) is writable by everyone;/],
    [{ isDirectory: false, mode: 0o100600 }, /^\/r is not a directory \(owner uid \d+, mode 0600\)/],
    [{ isSymlink: true, linkUid: OTHER }, new RegExp(`^/r is a symbolic link owned by uid ${OTHER}, not uid ${ME} \\(this process\\) or root`)],
  ];
  for (const [over, message] of cases) {
    const reason = untrustedDirReason('/r', dir(over), ME);
    assert.ok(reason, JSON.stringify(over));
    assert.match(reason!, message);
  }
  // Root is not trusted with a directory of another user either: that user could swap what is in it.
  assert.match(untrustedDirReason('/r', dir({ uid: 1000 }), 0)!, /owned by uid 1000, not uid 0/);
});

test('an absent directory passes (nothing in it to trust); a present one is judged from the filesystem', async () => {
  const tmp = tempDir('vc-own');
  try {
    assert.is(await untrustedDir(join(tmp.path, 'absent')), null);
    assert.is(await untrustedDir(tmp.path), null, 'mkdtemp: ours, 0700');
    chmodSync(tmp.path, 0o777);
    assert.match((await untrustedDir(tmp.path))!, /mode 0777\) is writable by its group and everyone/);
    chmodSync(tmp.path, 0o700);
  } finally {
    tmp.remove();
  }
});

test('PodStore: a new root is made 0700 with pods/ 0700, the pod directory 0700 and its record 0600', async () => {
  const tmp = tempDir('vc-own');
  try {
    const root = join(tmp.path, 'new', 'root');
    const store = new PodStore(root);
    assert.equal(await store.ids(), [], 'an absent root has no pods');
    await store.create(record('p'));
    assert.is(statSync(root).mode & 0o7777, 0o700);
    assert.is(statSync(join(root, 'pods')).mode & 0o7777, 0o700);
    assert.is(statSync(store.paths('p').dir).mode & 0o7777, 0o700);
    assert.is(statSync(store.paths('p').state).mode & 0o7777, 0o600);
    await store.write(await store.read('p'));
    assert.is(statSync(store.paths('p').state).mode & 0o7777, 0o600, 'a rewrite keeps 0600');
  } finally {
    tmp.remove();
  }
});

test('the API refuses a world- or group-writable state root (STATE_UNSAFE naming it, its owner and mode) and touches nothing in it', async () => {
  const tmp = tempDir('vc-own');
  try {
    const store = new PodStore(tmp.path);
    await store.create(record('p'));
    for (const mode of [0o777, 0o1777, 0o770]) {
      chmodSync(tmp.path, mode);
      const octal = mode.toString(8).padStart(4, '0');
      const message = new RegExp(`^state root refused: ${tmp.path} \\(owner uid ${ME}, mode ${octal}\\) is writable by`);
      await expectCode(listPods({ root: tmp.path }), VcError, 'STATE_UNSAFE', message);
      await expectCode(deletePod('p', { root: tmp.path, force: true }), VcError, 'STATE_UNSAFE', message);
      await expectCode(new PodStore(tmp.path).create(record('q')), VcError, 'STATE_UNSAFE', message);
    }
    assert.equal(readdirSync(join(tmp.path, 'pods')), ['p'], 'nothing deleted, nothing made');
    assert.equal(readdirSync(store.paths('p').dir), ['state.json'], 'no lock file was made');
    chmodSync(tmp.path, 0o700);
    assert.is((await listPods({ root: tmp.path })).length, 1, 'the same root, private again, is used');
  } finally {
    tmp.remove();
  }
});

if (!isRoot) {
  test('another user\'s root and cache: skipped', () => console.log(`\nSKIP ownership (another user's directories): chown needs root; uid ${ME} runs this`));
} else {
  test('the API refuses a state root another user owns, or a symbolic link to ours that another user owns', async () => {
    const tmp = tempDir('vc-own');
    try {
      const root = join(tmp.path, 'root');
      await new PodStore(root).create(record('p'));
      chownSync(root, OTHER, OTHER);
      const message = new RegExp(`^state root refused: ${root} is owned by uid ${OTHER}, not uid 0 \\(this process\\) \\(mode 0700\\)`);
      await expectCode(listPods({ root }), VcError, 'STATE_UNSAFE', message);
      await expectCode(deletePod('p', { root, force: true }), VcError, 'STATE_UNSAFE', message);
      chownSync(root, 0, 0);
      const link = join(tmp.path, 'link');
      symlinkSync(root, link);
      lchownSync(link, OTHER, OTHER);
      await expectCode(listPods({ root: link }), VcError, 'STATE_UNSAFE', new RegExp(`${link} is a symbolic link owned by uid ${OTHER}`));
      lchownSync(link, 0, 0);
      assert.is((await listPods({ root: link })).length, 1, 'root\'s own link to it is followed');
    } finally {
      tmp.remove();
    }
  });

  test('trustedCacheDir: makes a missing cache 0700; refuses another user\'s (CACHE_UNSAFE) or a world-writable one', async () => {
    const tmp = tempDir('vc-own');
    try {
      const made = join(tmp.path, 'xdg', 'virtcontainers');
      assert.is(await trustedCacheDir(made), made);
      assert.is(statSync(made).mode & 0o7777, 0o700);
      const theirs = join(tmp.path, 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      chownSync(theirs, OTHER, OTHER);
      await expectCode(trustedCacheDir(theirs), GuestError, 'CACHE_UNSAFE', new RegExp(`^cache directory refused: ${theirs} is owned by uid ${OTHER}, not uid 0 \\(this process\\) \\(mode 0755\\)`));
      const open = join(tmp.path, 'open');
      mkdirSync(open);
      chmodSync(open, 0o777);
      await expectCode(trustedCacheDir(open), GuestError, 'CACHE_UNSAFE', /mode 0777\) is writable by its group and everyone/);
    } finally {
      tmp.remove();
    }
  });
}

test.run();
