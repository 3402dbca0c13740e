// Reading binds back (docs/agent-protocol.md, "Binds": get_file and list_bind) in the agent's host
// test mode, with real namespaces and mounts: what a container wrote into a writable bind is read
// from the staging area while it runs and after it exited (until delete_container); paths stay
// inside the staging root as put_file's do; FIFOs and devices are described, never opened; big
// files come in chunks; long directories in pages. Needs root and a cgroup2 mount.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { containerAgentSuite } from './agent-container-rig.js';
import { Conn, text } from './agent-wire.js';

let c: Conn;
let rootfs = '';
let nextId = 0;

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64');

async function sh(id: string, script: string): Promise<{ out: string; err: string; code: number | null }> {
  const ex = await c.ok('exec_container', { id, argv: ['sh', '-c', script] });
  const p = await c.finished(ex.process);
  return { out: text(p.stdout), err: text(p.stderr), code: p.exit!.exitCode };
}

/** A started container with a writable dir bind at /mnt/rw and a file bind at /dev/termination-log. */
async function withBinds(argv: string[]): Promise<string> {
  const id = `rd${++nextId}`;
  await c.ok('create_container', {
    id, image: { path: rootfs }, argv,
    binds: [{ destination: '/mnt/rw', kind: 'dir' }, { destination: '/dev/termination-log', kind: 'file' }],
  });
  await c.ok('start_container', { id });
  return id;
}

/** Every entry of a directory, page by page (`after`), with how many pages it took. */
async function listAll(id: string, path: string): Promise<{ entries: any[]; pages: number }> {
  const entries: any[] = [];
  let pages = 0;
  for (let after: string | undefined; ;) {
    const r = await c.ok('list_bind', { id, bind: 0, path, ...(after !== undefined ? { after } : {}) });
    pages++;
    entries.push(...r.entries);
    if (!r.more) return { entries, pages };
    assert.ok(r.entries.length > 0, 'a page with more to come has entries');
    after = r.entries[r.entries.length - 1].name;
  }
}

containerAgentSuite({
  title: 'agent bind read',
  tmpPrefix: 'vc-bindrd-test-',
  cgroupName: 'vc-bindrd-test',
  rootfs: { dirs: ['mnt'] },
  cgroupRootRemoved: true,
  started: (rig) => ({ c, rootfs } = rig),
  defineTests,
});

function defineTests(): void {
  test('list_bind and get_file: what the container wrote, with kind, mode, owner and size; still there after it exited', async () => {
    const id = await withBinds(['sh', '-c', 'mkdir -p /mnt/rw/d/e; printf hello > /mnt/rw/d/a.txt; chmod 640 /mnt/rw/d/a.txt; chown 7:8 /mnt/rw/d/a.txt; '
      + 'ln -s a.txt /mnt/rw/d/link; mkfifo /mnt/rw/fifo; echo "killed by the test" > /dev/termination-log; exit 3']);
    await c.ok('wait_container', { id });
    assert.is((await c.ok('container_status', { id })).state, 'stopped');
    const top = await listAll(id, '');
    assert.equal(top.entries.map((e) => [e.name, e.kind]), [['d', 'dir'], ['fifo', 'fifo']]);
    const d = await listAll(id, 'd');
    assert.equal(d.entries.map((e) => e.name), ['a.txt', 'e', 'link']);
    assert.equal(d.entries[0], { name: 'a.txt', kind: 'file', mode: 0o640, uid: 7, gid: 8, size: 5 });
    assert.equal(d.entries[2], { name: 'link', kind: 'symlink', uid: 0, gid: 0, target: 'a.txt' });
    assert.equal(await c.ok('get_file', { id, bind: 0, path: 'd/a.txt' }), { kind: 'file', mode: 0o640, uid: 7, gid: 8, size: 5, data: b64('hello') });
    assert.equal(await c.ok('get_file', { id, bind: 0, path: 'd/a.txt', offset: 1, length: 3 }), { kind: 'file', mode: 0o640, uid: 7, gid: 8, size: 5, data: b64('ell') });
    assert.equal(await c.ok('get_file', { id, bind: 0, path: 'd/a.txt', offset: 9 }), { kind: 'file', mode: 0o640, uid: 7, gid: 8, size: 5, data: '' });
    // The last component is not followed: the link is described as a link.
    assert.equal(await c.ok('get_file', { id, bind: 0, path: 'd/link' }), { kind: 'symlink', uid: 0, gid: 0, target: 'a.txt' });
    const dir = await c.ok('get_file', { id, bind: 0, path: '' });
    assert.is(dir.kind, 'dir');
    assert.is(dir.data, undefined);
    // A FIFO is described, never opened (an open for reading would wait for a writer).
    const fifo = await c.ok('get_file', { id, bind: 0, path: 'fifo' });
    assert.equal([fifo.kind, fifo.data, fifo.size], ['fifo', undefined, undefined]);
    // The file bind: path "" only.
    const log = await c.ok('get_file', { id, bind: 1, path: '' });
    assert.is(unb64(log.data).toString(), 'killed by the test\n');
    assert.is(log.size, 19);
    await c.ok('delete_container', { id });
    assert.is((await c.errorCode('get_file', { id, bind: 1, path: '' })).code, 'NOT_FOUND', 'the staging area goes with the container');
  });

  test('a large file in chunks of at most 512 KiB; a directory of many entries in pages', async () => {
    const id = await withBinds(['sleep', '100']);
    // 1.5 MiB of a known pattern, and 3000 names of 200 bytes (more than one 512 KiB page at ×6).
    await sh(id, 'i=0; while [ $i -lt 24576 ]; do printf "%063d\\n" $i; i=$((i+1)); done > /mnt/rw/big; '
      + 'mkdir /mnt/rw/many; cd /mnt/rw/many; i=0; n=$(printf "%0190d" 0); while [ $i -lt 3000 ]; do : > "$(printf %05d $i)$n"; i=$((i+1)); done');
    const want = Buffer.from(Array.from({ length: 24576 }, (_, i) => `${String(i).padStart(63, '0')}\n`).join(''));
    const got: Buffer[] = [];
    for (let offset = 0; ;) {
      const r = await c.ok('get_file', { id, bind: 0, path: 'big', offset });
      assert.is(r.size, want.length);
      const data = unb64(r.data);
      assert.ok(data.length <= 512 * 1024, `a chunk of ${data.length} bytes`);
      if (data.length === 0) break;
      got.push(data);
      offset += data.length;
    }
    assert.ok(Buffer.concat(got).equals(want), 'the chunks make the file');
    assert.is(got.length, 3);
    const many = await listAll(id, 'many');
    assert.is(many.entries.length, 3000);
    assert.ok(many.pages > 1, `${many.pages} pages`);
    const names = many.entries.map((e) => e.name);
    assert.equal(names, [...names].sort(), 'sorted, each once');
    assert.is(new Set(names).size, 3000);
    await c.ok('signal_container', { id, signal: 9, all: true });
    await c.ok('wait_container', { id });
    await c.ok('delete_container', { id });
  });

  test('paths stay inside the staging root; names that are not UTF-8 are flagged', async () => {
    const id = await withBinds(['sleep', '100']);
    await sh(id, 'echo secret > /tmp/secret; ln -s / /mnt/rw/root; ln -s ../../.. /mnt/rw/up; mkdir /mnt/rw/in; echo inside > /mnt/rw/in/f; '
      + 'ln -s /in /mnt/rw/abs; : > "/mnt/rw/$(printf "bad\\377name")"');
    // Through "root" (-> /): resolved in the staging root, where tmp does not exist.
    const e = await c.errorCode('get_file', { id, bind: 0, path: 'root/tmp/secret' });
    assert.is(e.code, 'CONTAINER_FAILED');
    assert.match(e.message, `container "${id}": get_file bind 0 (/mnt/rw) "root/tmp/secret": open the parent directory: No such file or directory`);
    // An absolute link on the way resolves inside the root too.
    assert.is(unb64((await c.ok('get_file', { id, bind: 0, path: 'abs/f' })).data).toString(), 'inside\n');
    assert.is(unb64((await c.ok('get_file', { id, bind: 0, path: 'up/in/f' })).data).toString(), 'inside\n');
    // Listing a symlink to a directory: not followed.
    assert.match((await c.errorCode('list_bind', { id, bind: 0, path: 'root' })).message, 'not a directory');
    const bad = (await listAll(id, '')).entries.find((x) => x.nameNotUtf8);
    assert.ok(bad, 'the entry with the bad name is flagged');
    assert.is(bad.name, 'bad\uFFFDname');
    await c.ok('signal_container', { id, signal: 9, all: true });
    await c.ok('wait_container', { id });
    await c.ok('delete_container', { id });
  });

  test('remove_file: a file, a symlink (not its target), a directory with everything in it; what is not there is no error', async () => {
    const id = await withBinds(['sleep', '100']);
    await sh(id, 'mkdir -p /tmp/keep /mnt/rw/d/e/f; echo k > /tmp/keep/k; echo x > /mnt/rw/d/e/f/x; ln -s /tmp/keep /mnt/rw/d/out; '
      + 'ln -s /tmp/keep /mnt/rw/link; echo y > /mnt/rw/y');
    assert.equal(await c.ok('remove_file', { id, bind: 0, path: 'y' }), { removed: true });
    assert.equal(await c.ok('remove_file', { id, bind: 0, path: 'link' }), { removed: true });
    assert.equal(await c.ok('remove_file', { id, bind: 0, path: 'd' }), { removed: true });
    assert.is((await sh(id, 'ls -A /mnt/rw; cat /tmp/keep/k')).out, 'k\n', 'the bind is empty; what the links pointed at is kept');
    assert.equal(await c.ok('remove_file', { id, bind: 0, path: 'y' }), { removed: false });
    assert.equal(await c.ok('remove_file', { id, bind: 0, path: 'no/such/parent' }), { removed: false });
    for (const args of [{ bind: 0, path: '' }, { bind: 1, path: '' }, { bind: 0, path: '../x' }]) {
      const e = await c.errorCode('remove_file', { id, ...args });
      assert.is(e.code, 'BAD_REQUEST', e.message);
      assert.ok(e.message.startsWith('path: '), e.message);
    }
    await c.ok('signal_container', { id, signal: 9, all: true });
    await c.ok('wait_container', { id });
    await c.ok('delete_container', { id });
  });

  test('bad arguments: BAD_REQUEST naming the argument', async () => {
    const id = await withBinds(['sleep', '100']);
    const cases: [string, Record<string, unknown>, string, string][] = [
      ['get_file', { id, path: 'x' }, 'bind', 'missing'],
      ['get_file', { id, bind: 2, path: 'x' }, 'bind', `container "${id}" has 2 binds, got 2`],
      ['get_file', { id, bind: 0 }, 'path', 'missing'],
      ['get_file', { id, bind: 0, path: '../x' }, 'path', 'must not contain'],
      ['get_file', { id, bind: 0, path: '/etc/passwd' }, 'path', 'must be relative'],
      ['get_file', { id, bind: 0, path: 'x', offset: -1 }, 'offset', 'expected an integer'],
      ['get_file', { id, bind: 0, path: 'x', length: 512 * 1024 + 1 }, 'length', 'expected an integer from 0 to 524288'],
      ['get_file', { id, bind: 1, path: 'x' }, 'path', 'a file bind takes only path ""'],
      ['list_bind', { id, bind: 1, path: '' }, 'bind', 'bind 1 is a file bind: read it with get_file'],
      ['list_bind', { id, bind: 0, path: 'a/../..' }, 'path', 'must not contain'],
      ['list_bind', { id, bind: 0, path: '', after: 5 }, 'after', 'expected a string'],
    ];
    for (const [op, args, name, what] of cases) {
      const e = await c.errorCode(op, args);
      assert.is(e.code, 'BAD_REQUEST', `${op} ${JSON.stringify(args)}: ${e.message}`);
      assert.ok(e.message.startsWith(`${name}: `), `${op} ${JSON.stringify(args)} -> ${e.message}`);
      assert.match(e.message, what);
    }
    assert.is((await c.errorCode('get_file', { id: 'unknown', bind: 0, path: '' })).code, 'NOT_FOUND');
    assert.is((await c.errorCode('list_bind', { id: 'unknown', bind: 0, path: '' })).code, 'NOT_FOUND');
    const missing = await c.errorCode('get_file', { id, bind: 0, path: 'nothing' });
    assert.equal([missing.code, missing.message], ['CONTAINER_FAILED', `container "${id}": get_file bind 0 (/mnt/rw) "nothing": open: No such file or directory`]);
    await c.ok('signal_container', { id, signal: 9, all: true });
    await c.ok('wait_container', { id });
    await c.ok('delete_container', { id });
  });
}
