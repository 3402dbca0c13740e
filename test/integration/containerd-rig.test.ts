// The containerd test rig (test/helpers/containerd.ts) proved with Debian's runc shim
// (io.containerd.runc.v2) as the control: if these pass, a failure in the shim tests is the shim's.
// Real containerd, real ctr, real runc; nothing of the host's /run/containerd is touched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { containerdProblem, otherRigsRunning, RUN_DIR, startContainerd, type Containerd } from '../helpers/containerd.js';
import { importBusybox } from '../helpers/containerd-image.js';
import { liveProcesses } from '../helpers/containerd-host.js';

const problem = containerdProblem();
const hostRunDir = () => (existsSync(RUN_DIR) ? `present: ${readdirSync(RUN_DIR).sort().join(',')}` : 'absent');
const runDirBefore = hostRunDir();
const ownMountNamespace = readlinkSync('/proc/self/ns/mnt');
const hostContainerd = () => liveProcesses().some((p) => basename(p.argv[0] ?? '') === 'containerd' && p.mountNamespace === ownMountNamespace);
const busyAtStart = !problem && (hostContainerd() || otherRigsRunning('/none'));
let rig: Containerd | null = null;
let image = '';

const failText = (what: string, r: { code: number; stdout: string; stderr: string }) =>
  `${what}: exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}\ncontainerd log (end):\n${rig?.logs().slice(-3000)}`;

if (problem) {
  test('containerd rig: skipped', () => { console.log(`\nSKIP containerd-rig: ${problem}`); });
} else {
  test.before(async () => {
    rig = await startContainerd({ name: 'rig-test' });
    image = await importBusybox(rig);
  });
  test.after(async () => { await rig?.stop(); });

  test('ctr run --rm IMG id echo hi prints hi (runc)', async () => {
    const r = await rig!.ctr(['run', '--rm', image, 'echo-hi', 'echo', 'hi']);
    assert.equal(r.code, 0, failText('ctr run echo hi', r));
    assert.equal(r.stdout, 'hi\n');
  });

  test("a task's exit code comes back as ctr's exit code", async () => {
    const r = await rig!.ctr(['run', '--rm', image, 'exit-7', 'sh', '-c', 'exit 7']);
    assert.equal(r.code, 7, failText('ctr run exit 7', r));
  });

  // ctr run attaches stdin always but never passes its EOF on (ctr task exec does): `cat` would
  // wait for ever, so the task reads one line.
  test('stdin reaches the task and a tty is a tty (-t)', async () => {
    const read = await rig!.ctr(['run', '--rm', image, 'read-line', 'sh', '-c', 'read line; echo "got $line"'], { input: 'through stdin\n' });
    assert.equal(read.stdout, 'got through stdin\n', failText('ctr run read', read));
    const tty = await rig!.ctr(['run', '--rm', '-t', image, 'tty', 'sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty'], { tty: true });
    assert.equal(tty.code, 0, failText('ctr run -t', tty));
    assert.match(tty.stdout, /^is-a-tty\r+\n$/);
  });

  test('after --rm runs: no task, no container', async () => {
    const tasks = await rig!.ctr(['task', 'ls', '-q']);
    assert.equal(tasks.code, 0, failText('ctr task ls', tasks));
    assert.equal(tasks.stdout.trim(), '');
    const containers = await rig!.ctr(['containers', 'ls', '-q']);
    assert.equal(containers.stdout.trim(), '');
  });

  test("stop() kills a running task and its shim, and leaves nothing; the host's /run/containerd is untouched", async () => {
    const r = await rig!.ctr(['run', '-d', image, 'sleeper', 'sleep', '1000']);
    assert.equal(r.code, 0, failText('ctr run -d sleep', r));
    const shims = liveProcesses().filter((p) => p.argv[0]?.endsWith('containerd-shim-runc-v2') && p.argv.includes(rig!.address));
    assert.equal(shims.length, 1, `one runc shim for our containerd, found ${JSON.stringify(shims.map((s) => s.argv))}`);
    assert.equal(rig!.leftovers().length > 0, true, 'leftovers() sees the running containerd');
    // The shim's socket is on the rig's tmpfs, not in the host's /run/containerd.
    const sockets = await rig!.exec(['ls', `${RUN_DIR}/s`]);
    const names = sockets.stdout.split('\n').filter(Boolean);
    assert.equal(names.length >= 1, true, failText(`ls ${RUN_DIR}/s in the rig's namespace`, sockets));
    for (const n of names) assert.equal(existsSync(`${RUN_DIR}/s/${n}`), false, `shim socket ${n} is visible on the host`);
    await rig!.stop();
    assert.equal(rig!.leftovers(), []);
    assert.equal(liveProcesses().filter((p) => shims.some((s) => s.pid === p.pid)), [], 'the shim is gone');
    // A containerd in the host's mount namespace (the system's, a developer's) may change it meanwhile.
    // So may another test's rig (it makes the directory when missing, and removes it).
    if (busyAtStart || hostContainerd() || otherRigsRunning(rig!.dir)) console.log(`\nNOTE containerd-rig: another containerd runs (in the host's mount namespace, or another rig), so ${RUN_DIR} is not compared before/after`);
    else assert.equal(hostRunDir(), runDirBefore, `the host's ${RUN_DIR}`);
    const after = await rig!.ctr(['version']).then(() => 'ran', (err: Error) => err.message);
    assert.match(after, /not running/);
  });
}

test.run();
