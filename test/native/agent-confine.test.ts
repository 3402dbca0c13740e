// Confinement of container processes (docs/agent-protocol.md, "Confinement") in the agent's host
// test mode, checked from inside the container: /proc/self/status (capability masks, NoNewPrivs,
// Seccomp), a hand-built seccomp filter, rlimits, oom_score_adj, groups, sysctls, masked and
// read-only paths and extra mounts; plus the BAD_REQUEST answers for bad input. Needs root, as
// agent-containers.test.ts. The request values are written out here (capability numbers, BPF
// bytes) rather than taken from src/oci, so the agent is checked against the protocol document.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { containerAgentSuite } from './agent-container-rig.js';
import { Conn, text } from './agent-wire.js';

// The OCI default capabilities: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
const DEFAULT_CAPS = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31].reduce((m, c) => m + 2 ** c, 0);
const NET_BIND_SERVICE = 2 ** 10;
const hex = (mask: number) => mask.toString(16).padStart(16, '0');
const capsOf = (bounding: number, effective: number, permitted: number, inheritable: number, ambient: number) => ({ bounding, effective, permitted, inheritable, ambient });

/** A classic-BPF seccomp program (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k, little-endian). */
function bpf(insns: Array<[number, number, number, number]>): string {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    buf.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return buf.toString('base64');
}
const LD_ABS = 0x20, JEQ_K = 0x15, RET_K = 0x06;
const RET_ALLOW = 0x7fff0000, RET_EPERM = 0x00050000 | 1;
// mkdir (83) and mkdirat (258) fail with EPERM on x86_64; everything else is allowed.
const DENY_MKDIR = bpf([
  [LD_ABS, 0, 0, 4], // seccomp_data.arch
  [JEQ_K, 0, 4, 0xc000003e], // AUDIT_ARCH_X86_64, else allow
  [LD_ABS, 0, 0, 0], // seccomp_data.nr
  [JEQ_K, 1, 0, 83],
  [JEQ_K, 0, 1, 258],
  [RET_K, 0, 0, RET_EPERM],
  [RET_K, 0, 0, RET_ALLOW],
]);
const ALLOW_ALL = bpf([[RET_K, 0, 0, RET_ALLOW]]);
const RLIMIT_CORE = 4, RLIMIT_NOFILE = 7;

let c: Conn;
let rootfs = '';

let nextId = 0;

async function create(args: Record<string, unknown>): Promise<{ id: string; process: number }> {
  const id = `k${++nextId}`;
  const r = await c.ok('create_container', { id, image: { path: rootfs }, ...args });
  return { id, process: r.process };
}

/** Creates, starts and waits for a container running `sh -c script`; deletes it. */
async function run(script: string, extra: Record<string, unknown> = {}) {
  const ctr = await create({ argv: ['sh', '-c', script], ...extra });
  await c.ok('start_container', { id: ctr.id });
  const p = await c.finished(ctr.process);
  await c.ok('wait_container', { id: ctr.id });
  await c.ok('delete_container', { id: ctr.id });
  return { out: text(p.stdout), err: text(p.stderr), exitCode: p.exit!.exitCode };
}

/** A running container (sleeping init) for exec_container; `done` kills and deletes it. */
async function running(extra: Record<string, unknown>) {
  const ctr = await create({ argv: ['sleep', '100'], ...extra });
  await c.ok('start_container', { id: ctr.id });
  return {
    exec: async (script: string, more: Record<string, unknown> = {}) => {
      const ex = await c.ok('exec_container', { id: ctr.id, argv: ['sh', '-c', script], ...more });
      const p = await c.finished(ex.process);
      return { out: text(p.stdout), err: text(p.stderr) };
    },
    done: async () => {
      await c.ok('signal_container', { id: ctr.id, signal: 9 });
      await c.ok('wait_container', { id: ctr.id });
      await c.ok('delete_container', { id: ctr.id });
    },
  };
}

/** `Key:\tvalue` lines of /proc/self/status as printed by `grep`, as an object. */
function statusFields(out: string): Record<string, string> {
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split(/:\s*/)).map(([k, v]) => [k, v]));
}
const STATUS = 'grep -E "^(Cap|NoNewPrivs|Seccomp:)" /proc/self/status';

async function badRequest(args: Record<string, unknown>, op = 'create_container'): Promise<string> {
  const base = op === 'create_container' ? { id: 'bad', image: { path: rootfs }, argv: ['true'] } : { argv: ['true'] };
  const e = await c.errorCode(op, { ...base, ...args });
  assert.is(e.code, 'BAD_REQUEST', e.message);
  return e.message;
}

containerAgentSuite({
  title: 'agent confinement',
  tmpPrefix: 'vc-confine-test-',
  cgroupName: 'vc-confine',
  rootfs: {
    dirs: ['home/app', 'data'],
    passwd: 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n',
    group: 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n',
    files: { 'data/file.txt': 'in the image\n' },
  },
  cgroupRootRemoved: false,
  started: (rig) => ({ c, rootfs } = rig),
  defineTests,
});

function defineTests(): void {
  test('no security: as before — every capability, no filter, NoNewPrivs 0', async () => {
    // The agent's own set: every capability this test runs with (a sandbox may lack some).
    const all = /^CapBnd:\s*(\w+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!;
    const s = statusFields((await run(STATUS)).out);
    assert.equal([s.CapBnd, s.CapEff, s.CapPrm, s.CapInh, s.CapAmb], [all, all, all, hex(0), hex(0)]);
    assert.is(s.NoNewPrivs, '0');
    assert.is(s.Seccomp, '0');
  });

  test('capabilities: the OCI default set for root', async () => {
    const caps = capsOf(DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS, 0, 0);
    const s = statusFields((await run(STATUS, { security: { caps } })).out);
    const d = hex(DEFAULT_CAPS);
    assert.is(d, '00000000a80425fb', 'the well-known default mask');
    assert.equal([s.CapBnd, s.CapEff, s.CapPrm, s.CapInh, s.CapAmb], [d, d, d, hex(0), hex(0)]);
    const r = await run('chroot / true && echo chroot-ok; mount -t tmpfs none /tmp 2>&1 || echo mount-refused', { security: { caps } });
    assert.match(r.out, 'chroot-ok', 'CAP_SYS_CHROOT is kept');
    assert.match(r.out, 'mount-refused', 'CAP_SYS_ADMIN is gone');
  });

  test('capabilities: a non-root user keeps an ambient one across the uid change', async () => {
    const nb = NET_BIND_SERVICE;
    const caps = capsOf(DEFAULT_CAPS, nb, nb, nb, nb);
    const s = statusFields((await run(STATUS, { user: 'app', security: { caps } })).out);
    assert.equal([s.CapBnd, s.CapEff, s.CapPrm, s.CapInh, s.CapAmb], [hex(DEFAULT_CAPS), hex(nb), hex(nb), hex(nb), hex(nb)]);
    const plain = statusFields((await run(STATUS, { user: 'app', security: { caps: capsOf(DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS, 0, 0) } })).out);
    assert.equal([plain.CapEff, plain.CapPrm, plain.CapAmb], [hex(0), hex(0), hex(0)], 'no ambient: a non-root user has none after execve');
  });

  test('no_new_privs and a seccomp filter (mkdir → EPERM), installed with or without no_new_privs', async () => {
    let r = await run(`${STATUS}; mkdir /tmp/x; touch /tmp/file && echo touch-ok`, { security: { noNewPrivileges: true, seccomp: { filter: DENY_MKDIR } } });
    let s = statusFields(r.out.split('\n').filter((l) => l.includes(':')).join('\n'));
    assert.is(s.NoNewPrivs, '1');
    assert.is(s.Seccomp, '2');
    assert.match(r.err, /mkdir: .*Operation not permitted/);
    assert.match(r.out, 'touch-ok', 'other calls pass');
    // Without no_new_privs the filter goes in while the init is still root with CAP_SYS_ADMIN,
    // before the uid change (which it must then allow).
    r = await run(`${STATUS}; mkdir /tmp/x`, { user: 'app', security: { caps: capsOf(DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS, 0, 0), seccomp: { filter: DENY_MKDIR } } });
    s = statusFields(r.out);
    assert.is(s.NoNewPrivs, '0');
    assert.is(s.Seccomp, '2');
    assert.match(r.err, /Operation not permitted/);
    r = await run(STATUS, { security: { noNewPrivileges: true } });
    assert.equal([statusFields(r.out).NoNewPrivs, statusFields(r.out).Seccomp], ['1', '0']);
  });

  test('exec_container: the container\'s confinement by default; security, rlimits, groups, noNewPrivileges override it', async () => {
    const ctr = await running({
      user: 'app',
      security: { caps: capsOf(DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS, 0, 0), seccomp: { filter: DENY_MKDIR } },
      rlimits: [{ resource: RLIMIT_NOFILE, soft: 123, hard: 456 }],
      oomScoreAdj: 321,
      additionalGids: [4242],
    });
    try {
      let r = await ctr.exec(`${STATUS}; ulimit -n; cat /proc/self/oom_score_adj; id -G; mkdir /tmp/x`);
      const lines = r.out.trim().split('\n');
      const s = statusFields(lines.slice(0, 7).join('\n'));
      assert.is(s.Seccomp, '2');
      assert.is(s.CapBnd, hex(DEFAULT_CAPS));
      assert.equal(lines.slice(7), ['123', '321', '1000 2000 4242']);
      assert.match(r.err, /Operation not permitted/);
      r = await ctr.exec(`${STATUS}; ulimit -n; id -G; mkdir /tmp/y && echo mkdir-ok`, {
        security: { seccomp: { filter: ALLOW_ALL }, caps: capsOf(NET_BIND_SERVICE, 0, 0, 0, 0) },
        rlimits: [{ resource: RLIMIT_NOFILE, soft: 50, hard: 60 }],
        additionalGids: [5555],
        noNewPrivileges: true,
      });
      const o = r.out.trim().split('\n');
      const t = statusFields(o.slice(0, 7).join('\n'));
      assert.equal([t.CapBnd, t.NoNewPrivs], [hex(NET_BIND_SERVICE), '1']);
      assert.equal(o.slice(7), ['50', '1000 2000 5555', 'mkdir-ok']);
      assert.match(await badRequest({ id: 'nope', security: { maskedPaths: ['/proc/kcore'] } }, 'exec_container'), /^security\.maskedPaths: only create_container/);
    } finally {
      await ctr.done();
    }
  });

  test('rlimits (null = unlimited), oom_score_adj, additional gids', async () => {
    const r = await run('ulimit -n; ulimit -Hn; grep -E "^Max (open files|core file size)" /proc/self/limits; cat /proc/self/oom_score_adj; id', {
      user: 'app',
      rlimits: [{ resource: RLIMIT_NOFILE, soft: 123, hard: 456 }, { resource: RLIMIT_CORE, soft: null, hard: null }],
      oomScoreAdj: 500,
      additionalGids: [4242, 2000],
    });
    const lines = r.out.trim().split('\n');
    assert.equal(lines.slice(0, 2), ['123', '456']);
    assert.match(lines[2]!, /^Max core file size\s+unlimited\s+unlimited/);
    assert.match(lines[3]!, /^Max open files\s+123\s+456/);
    assert.is(lines[4], '500');
    assert.is(lines[5], 'uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),4242');
  });

  test('sysctls: written in the container\'s ipc namespace, before /proc/sys turns read-only', async () => {
    const hostMsgmax = readFileSync('/proc/sys/kernel/msgmax', 'utf8');
    const r = await run('cat /proc/sys/kernel/msgmax /proc/sys/fs/mqueue/msg_max; echo 1 > /proc/sys/kernel/msgmax', {
      sysctls: { 'kernel.msgmax': '12345', 'fs.mqueue.msg_max': '20' },
      security: { readonlyPaths: ['/proc/sys'] },
    });
    assert.is(r.out, '12345\n20\n');
    assert.match(r.err, 'Read-only file system');
    assert.is(readFileSync('/proc/sys/kernel/msgmax', 'utf8'), hostMsgmax, 'the host\'s value is untouched');
    assert.match(await badRequest({ sysctls: { 'vm.swappiness': '10' } }), /^sysctls\.vm\.swappiness: not a namespaced sysctl/);
    assert.match(await badRequest({ sysctls: { 'kernel.msgmax': 5 } }), /^sysctls\.kernel\.msgmax: expected a string/);
    assert.match(await badRequest({ sysctls: { 'net..x': '1' } }), /^sysctls\.net\.\.x: not a sysctl name/);
  });

  test('masked paths (file → /dev/null, directory → empty read-only tmpfs, missing → skipped) and read-only paths', async () => {
    // /proc/version stands in for /proc/kcore, which some hosts' kernels lack (the VM test has it).
    const r = await run('wc -c < /proc/version; ls -A /sys/firmware | wc -l; touch /sys/firmware/x 2>&1; grep " /proc/sys " /proc/self/mounts; echo 1 > /proc/sys/kernel/msgmax', {
      security: { maskedPaths: ['/proc/version', '/sys/firmware', '/proc/kcore', '/proc/no-such-file'], readonlyPaths: ['/proc/sys', '/no/such/dir'] },
    });
    const lines = r.out.trim().split('\n');
    assert.is(lines[0]!.trim(), '0', '/proc/version reads empty');
    assert.is(lines[1]!.trim(), '0', '/sys/firmware is empty');
    assert.match(lines[2]!, 'Read-only file system');
    assert.match(lines[3]!, /^proc \/proc\/sys proc ro,nosuid,nodev,noexec/);
    assert.match(r.err, 'Read-only file system');
    assert.match(await badRequest({ security: { maskedPaths: ['proc/kcore'] } }), /^security\.maskedPaths\[0\]: "proc\/kcore" is not an absolute path/);
    assert.match(await badRequest({ security: { readonlyPaths: ['/proc/../etc'] } }), /^security\.readonlyPaths\[0\]: .*\.\. components/);
  });

  test('mounts: tmpfs, mqueue, cgroup, a bind; the agent\'s /proc, /sys, /dev, /dev/pts, /dev/shm replaced, not doubled', async () => {
    const mounts = [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=2m'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      { destination: '/scratch/deep', type: 'tmpfs', options: ['size=1m', 'mode=700', 'noexec'] },
      { destination: '/image-data', type: 'bind', source: '/data', options: ['rbind', 'ro'] },
      { destination: '/etc/file-copy', type: 'bind', source: '/data/file.txt', options: ['bind'] },
    ];
    const r = await run('cat /proc/self/mounts; stat -c "%a" /scratch/deep; cat /image-data/file.txt /etc/file-copy; touch /image-data/x 2>&1; ls /dev/null /dev/ptmx', { mounts });
    const lines = r.out.trim().split('\n');
    const table = lines.filter((l) => l.split(' ').length === 6).map((l) => l.split(' '));
    const points = table.map((m) => m[1]);
    // A replaced mount is unmounted and made anew, so it moves to the end of the table.
    assert.equal([...points].sort(), ['/', '/dev', '/dev/mqueue', '/dev/pts', '/dev/shm', '/etc/file-copy', '/image-data', '/proc', '/scratch/deep', '/sys', '/sys/fs/cgroup']);
    const at = (p: string) => table.find((m) => m[1] === p)!;
    assert.is(at('/dev/shm')[2], 'tmpfs');
    assert.match(at('/dev/shm')[3]!, 'size=2048k');
    assert.is(at('/dev/mqueue')[2], 'mqueue');
    assert.is(at('/sys/fs/cgroup')[2], 'cgroup2');
    assert.match(at('/sys/fs/cgroup')[3]!, /^ro,/);
    assert.match(at('/scratch/deep')[3]!, /rw,.*noexec.*size=1024k,mode=700/);
    assert.match(at('/image-data')[3]!, /^ro,/);
    assert.match(at('/dev')[3]!, /nosuid/);
    assert.match(r.out, '700\nin the image\nin the image\n');
    assert.match(r.out, 'Read-only file system');
    assert.match(r.out, '/dev/null\n/dev/ptmx');
  });

  test('mounts: bad input is BAD_REQUEST naming the field; a mount the kernel refuses fails the create', async () => {
    const m = (x: Record<string, unknown>) => badRequest({ mounts: [{ destination: '/x', type: 'tmpfs', ...x }] });
    assert.match(await m({ type: 'nfs' }), /^mounts\[0\]\.type: "nfs" is not supported \(proc, sysfs, tmpfs, devpts, mqueue, cgroup, cgroup2, bind\)/);
    assert.match(await m({ destination: 'x' }), /^mounts\[0\]\.destination: "x" is not an absolute path/);
    assert.match(await m({ destination: '/' }), /^mounts\[0\]\.destination: "\/" is the container's root/);
    assert.match(await m({ type: 'bind' }), /^mounts\[0\]\.source: missing/);
    assert.match(await m({ options: ['rbind'] }), /^mounts\[0\]\.options: bind and rbind need type "bind"/);
    assert.match(await m({ type: 'bind', source: '/data', options: ['mode=755'] }), /^mounts\[0\]\.options: a bind takes no filesystem options/);
    assert.match(await m({ destination: '/dev', type: 'proc' }), /^mounts\[0\]\.type: "proc" on \/dev: only tmpfs/);
    assert.match(await m({ opts: [] }), /^mounts\[0\]\.opts: unknown argument/);
    assert.match(await badRequest({ mounts: {} }), /^mounts: expected an array/);
    const e = await c.errorCode('create_container', { id: 'badmount', image: { path: rootfs }, argv: ['true'], mounts: [{ destination: '/x', type: 'tmpfs', options: ['bogus=1'] }] });
    assert.is(e.code, 'CONTAINER_FAILED');
    assert.match(e.message, 'mount tmpfs on /x: Invalid argument');
    assert.equal((await c.ok('list_containers')).containers, [], 'nothing is left behind');
  });

  test('security, rlimits, oomScoreAdj, additionalGids: bad input is BAD_REQUEST naming the field and value', async () => {
    const caps = capsOf(DEFAULT_CAPS, DEFAULT_CAPS, DEFAULT_CAPS, 0, 0);
    assert.match(await badRequest({ security: { noNewPrivs: true } }), /^security\.noNewPrivs: unknown argument/);
    assert.match(await badRequest({ security: { caps: { ...caps, effective: 2 ** 21 } } }), /^security\.caps\.effective: has capabilities not in permitted: 21/);
    assert.match(await badRequest({ security: { caps: { ...caps, inheritable: 2 ** 21 } } }), /^security\.caps\.inheritable: has capabilities not in bounding: 21/);
    assert.match(await badRequest({ security: { caps: { ...caps, ambient: NET_BIND_SERVICE } } }), /^security\.caps\.ambient: has capabilities not in both permitted and inheritable: 10/);
    assert.match(await badRequest({ security: { caps: { ...caps, bounding: 2 ** 41 } } }), /^security\.caps\.bounding: expected an integer from 0 to 2199023255551, got 2199023255552/);
    const { ambient: _, ...noAmbient } = caps;
    assert.match(await badRequest({ security: { caps: noAmbient } }), /^security\.caps\.ambient: missing/);
    assert.match(await badRequest({ security: { noNewPrivileges: 'yes' } }), /^security\.noNewPrivileges: expected a boolean, got "yes"/);
    assert.match(await badRequest({ security: { seccomp: { filter: 'not base64!' } } }), /^security\.seccomp\.filter: is not base64/);
    assert.match(await badRequest({ security: { seccomp: { filter: Buffer.alloc(12).toString('base64') } } }), /^security\.seccomp\.filter: 12 bytes: expected 1 to 4096 instructions/);
    assert.match(await badRequest({ security: { seccomp: {} } }), /^security\.seccomp\.filter: missing/);
    assert.match(await badRequest({ rlimits: [{ resource: 16, soft: 1, hard: 1 }] }), /^rlimits\[0\]\.resource: expected an integer from 0 to 15, got 16/);
    assert.match(await badRequest({ rlimits: [{ resource: 7, soft: 10, hard: 5 }] }), /^rlimits\[0\]\.soft: 10 is above hard 5/);
    assert.match(await badRequest({ rlimits: [{ resource: 7, hard: 5 }] }), /^rlimits\[0\]\.soft: missing \(null for no limit\)/);
    assert.match(await badRequest({ rlimits: [{ resource: 7, soft: 1, hard: 1 }, { resource: 7, soft: 2, hard: 2 }] }), /^rlimits\[1\]\.resource: 7 is given twice/);
    assert.match(await badRequest({ oomScoreAdj: 1001 }), /^oomScoreAdj: expected an integer from -1000 to 1000, got 1001/);
    assert.match(await badRequest({ additionalGids: [1, -2] }), /^additionalGids\[1\]: expected an integer from 0 to 4294967294, got -2/);
    assert.match(await badRequest({ additionalGids: [1e30] }), /^additionalGids\[0\]: expected an integer from 0 to 4294967294, got 1e\+30/);
    assert.match(await badRequest({ additionalGids: 'wheel' }), /^additionalGids: expected an array of gids, got "wheel"/);
    assert.equal((await c.ok('list_containers')).containers, []);
  });
}
