// virtc-runtime's create with OCI hooks, before any pod: the prestart hooks run on the host after
// the holder exists, in the network namespace made for it (the state on stdin names its pid), and
// a failing one fails create — the error in the json log as docker's shim reads it — and undoes
// it (no record, no holder, no pod). Hooks that would run inside the container are refused.
// No VM boots here (the pod comes after the hooks); docker.test.ts covers hooks that succeed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs } from '../helpers/images.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const BIN = join(process.cwd(), 'bin', 'virtc-runtime');
const HOLDER = join(process.cwd(), 'build', 'Release', 'vc-holder');
const tmp = tempDir('vchk');
const root = join(tmp.path, 'rt');
const env: NodeJS.ProcessEnv = { ...process.env, VIRTC_RUNTIME_IDLE_MS: '500' };

function bundle(name: string, hooks: unknown): string {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    ociVersion: '1.0.2',
    process: { args: ['true'], cwd: '/' },
    root: { path: busyboxRootfs(join(tmp.path, 'rootfs')) },
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'network' }] },
    annotations: { 'org.example.note': name },
    hooks,
  }));
  return dir;
}

function cli(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, '--root', root, ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, stderr: r.stderr ?? '' };
}

if (!existsSync(HOLDER)) {
  test('oci-runtime hooks: skipped', () => { console.log(`\nSKIP oci-runtime-hooks: vc-holder is not built (${HOLDER} missing)`); });
} else {
  test.after(async () => {
    await waitFor('the daemon to leave', () => !existsSync(join(root, 'daemon.pid')), 20_000).catch(() => {});
    tmp.remove();
  });

  test('a failing prestart hook fails create, with the holder\'s pid in its own netns, and undoes it', () => {
    const seen = join(tmp.path, 'seen');
    const hook = join(tmp.path, 'record-hook');
    // Records the state and the network namespace of the pid it names, as libnetwork-setkey reads it.
    writeFileSync(hook, `#!/bin/sh\ncat > ${seen}.json\npid=$(sed 's/.*"pid":\\([0-9]*\\).*/\\1/' ${seen}.json)\nreadlink /proc/$pid/ns/net > ${seen}.netns\n`);
    chmodSync(hook, 0o755);
    const b = bundle('fails', { prestart: [{ path: hook }, { path: '/bin/sh', args: ['sh', '-c', 'echo no network for you >&2; exit 5'] }] });
    const log = join(b, 'log.json');
    const r = cli(['--log', log, '--log-format', 'json', 'create', '--bundle', b, 'h1']);
    assert.is(r.status, 1, `create: ${r.stderr}`);
    const errors = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'error');
    assert.match(errors.at(-1)!.msg, 'hooks.prestart[1] (/bin/sh): failed (exit code 5): no network for you');
    const state = JSON.parse(readFileSync(`${seen}.json`, 'utf8')) as Record<string, unknown>;
    assert.equal([state.id, state.status, state.bundle, state.annotations], ['h1', 'creating', b, { 'org.example.note': 'fails' }]);
    assert.ok(Number(state.pid) > 0, `pid ${String(state.pid)}`);
    const netns = readFileSync(`${seen}.netns`, 'utf8').trim();
    assert.match(netns, /^net:\[\d+\]$/, 'the hook saw the holder alive');
    assert.is.not(netns, readlinkSync('/proc/self/ns/net'), 'the holder has a network namespace of its own');
    assert.not.ok(existsSync(`/proc/${String(state.pid)}`) && readFileSync(`/proc/${String(state.pid)}/cmdline`, 'utf8').includes('vc-holder'), 'the holder is gone');
    assert.equal(cli(['state', 'h1']).status, 1, 'no record is left');
    assert.not.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(join(root, 'containers')), 'the namespace pin under the record is unmounted');
    assert.equal(existsSync(join(root, 'pods', 'pods')) ? readdirSync(join(root, 'pods', 'pods')) : [], [], 'no pod was made');
  });

  test('hooks that would run in the container are refused, naming the field', () => {
    const b = bundle('inside', { createContainer: [{ path: '/bin/true' }] });
    const r = cli(['create', '--bundle', b, 'h2']);
    assert.is(r.status, 1);
    assert.match(r.stderr, 'hooks.createContainer (/bin/true) is not supported');
    assert.equal(cli(['state', 'h2']).status, 1);
  });
}

test.run();
