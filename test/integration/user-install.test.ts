// vc-test: host-network
// vc-test: either-lane
// The package as a user gets it (issue 10): a Debian bookworm minbase root with only node and
// qemu-system-x86 — no compiler, no busybox, no erofs-utils, no iproute2, no CNI plugins —
// installs the two packed tarballs (virtcontainers with its prebuilds, and the guest kernel
// package) offline from an npm cache, compiles nothing, and `npx virtc run` names each missing
// host program with exit 125 in the order a user meets them: QEMU, busybox, the CNI plugins for
// the default bridge network (made before the VM boots; iproute2 is not needed: the addon speaks
// rtnetlink), and with `--network none` mkfs.erofs. With busybox-static and erofs-utils installed,
// `npx virtc run --rm --network none -- echo hi` prints `hi` on QEMU/TCG in a chroot; with the CNI
// plugins (containernetworking-plugins) and still no iproute2, `npx virtc run --rm -- echo hi`
// prints `hi` and a pod pings its gateway on the bridge.
// The root is cached (test/helpers/user-root.ts); each run unpacks a fresh copy and removes it.
// This file runs in the host's network namespace (the mark above: scripts/test.js), since building
// the root and the guest kernel package fetches from the Debian mirror; every command in the
// user's root runs in a network namespace of its own (test/helpers/chroot.ts), so the pods'
// bridge vc0, veths and taps are made there and never here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { chrootProblem, runInRoot, type RootRun } from '../helpers/chroot.js';
import { tempDir } from '../helpers/tmp.js';
import { cachedUserRoot, debianMirror, unpackUserRoot, userRootProblem } from '../helpers/user-root.js';
import { checkout, checkoutProblem, kernelTarball, npmCacheFor, packMain, type Tarball } from '../helpers/user-packages.js';

const log = (msg: string) => console.log(`  ${msg}`);
const problem = chrootProblem() ?? checkoutProblem() ?? userRootProblem(debianMirror());
const tmp = tempDir('vc-user');
const root = join(tmp.path, 'root');
const APP = '/root/app';
let main: Tarball, kernel: Tarball;
let gitStatusBefore = '';
let hostLinksBefore = '';

/** Runs a script in the user's root, in the app dir, offline; prints its output indented. */
async function user(script: string, timeoutMs = 5 * 60_000): Promise<RootRun> {
  log(`$ ${script.trim().replace(/\s*\n\s*/g, '; ')}`);
  const t0 = Date.now();
  const r = await runInRoot(root, `cd ${APP}\n${script}`, { timeoutMs, env: { DEBIAN_FRONTEND: 'noninteractive' }, onOutput: (c) => process.stdout.write(c.replace(/^(?=.)/gm, '    | ')) });
  log(`(exit ${r.code}${r.signal ? `, ${r.signal}` : ''}, ${Date.now() - t0} ms)`);
  return r;
}

/** The links of the test's own network namespace (the host's): none may come or go. */
function hostLinks(): string {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return r.stdout.split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).filter((n) => n !== undefined).sort().join(' ');
}

function podsLeft(): string {
  return spawnSync('sh', ['-c', `ls ${root}/run/virtcontainers/pods 2>/dev/null`], { encoding: 'utf8' }).stdout.trim();
}
function podsNow(): string[] {
  return podsLeft().split('\n').filter((id) => id !== '').sort();
}

/**
 * A start that fails on a missing network program leaves nothing: the programs and plugins are
 * checked before anything of the network is recorded, and `run --rm` deletes the pod it made.
 */
function assertNoPodLeft(): void {
  assert.equal(podsNow(), [], 'the failed run --rm left a pod');
}

function gitStatus(): string {
  return spawnSync('git', ['status', '--porcelain', '--ignored', '--untracked-files=all', '--', '.', ':!dist', ':!node_modules', ':!build'], { cwd: checkout, encoding: 'utf8' }).stdout;
}

/** Node and npm as the host has them (Debian's nodejs is 18; the package needs ≥ 20.19). */
function putNode(): void {
  copyFileSync(realpathSync(process.execPath), join(root, 'usr/bin/node'));
  const npmCli = realpathSync(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim());
  const npmDir = dirname(dirname(npmCli)); // …/node_modules/npm/bin/npm-cli.js
  cpSync(npmDir, join(root, 'usr/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/bin/npm'));
  symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/bin/npx'));
}

/** No mount may be left under the temp dir before it is removed (rm would follow into it). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/**
 * Copies left by a killed run (its after hook never ran) are removed once an hour old. Its
 * processes and mounts are gone already (test/helpers/chroot.ts); a copy with a mount under it is
 * left alone, since removing it would reach into what is mounted there.
 */
function removeStaleCopies(): void {
  for (const name of readdirSync('/tmp').filter((n) => n.startsWith('vc-user-'))) {
    const dir = join('/tmp', name);
    try {
      if (dir === tmp.path || Date.now() - statSync(dir).mtimeMs < 60 * 60_000 || mountsUnder(dir).length > 0) continue;
      rmSync(dir, { recursive: true, force: true });
      log(`removed ${dir}, left by a run that was killed`);
    } catch { /* gone already */ }
  }
}

test.before(async () => {
  if (problem) return;
  removeStaleCopies();
  gitStatusBefore = gitStatus();
  hostLinksBefore = hostLinks();
  const t0 = Date.now();
  const { tarball, buildMs } = await cachedUserRoot(log);
  log(buildMs ? `user root: cold build ${buildMs} ms` : `user root: cached ${tarball}`);
  const t1 = Date.now();
  mkdirSync(root);
  unpackUserRoot(tarball, root);
  putNode();
  log(`user root: fresh copy with node ${process.version} and npm in ${Date.now() - t1} ms (${root})`);
  const pkgs = join(tmp.path, 'pkgs');
  main = packMain(pkgs);
  kernel = await kernelTarball(log);
  log(`tarballs: ${basename(main.path)} ${main.size} bytes (${main.files} files), ${basename(kernel.path)} ${kernel.size} bytes`);
  const cache = npmCacheFor([main.path, kernel.path]);
  mkdirSync(join(root, APP.slice(1)));
  for (const t of [main, kernel]) copyFileSync(t.path, join(root, APP.slice(1), basename(t.path)));
  cpSync(cache, join(root, 'root/npm-cache'), { recursive: true });
  log(`setup took ${Date.now() - t0} ms`);
});

test.after(() => {
  const left = mountsUnder(tmp.path);
  if (left.length > 0) throw new Error(`mounts left under ${tmp.path}, not removing it: ${left.join(', ')}`);
  tmp.remove();
  if (!problem) assert.is(gitStatus(), gitStatusBefore, 'the checkout is unchanged');
});

if (problem) {
  test('user install: skipped', () => { console.log(`\nSKIP user-install: ${problem}`); });
} else {
  test('the root has node ≥ 20.19, QEMU and util-linux, and no compiler, make, python3, busybox, mkfs.erofs, iproute2 or CNI plugins', async () => {
    const r = await user(`
      node -v; npm -v; for p in qemu-system-x86_64 nsenter unshare; do command -v $p; done
      for p in g++ gcc cc c++ make python3 busybox mkfs.erofs ip tc; do if command -v $p; then echo "unexpected: $p"; exit 1; fi; done
      test ! -e /usr/lib/cni/bridge && test ! -e /usr/libexec/cni/bridge && test ! -e /opt/cni/bin/bridge && echo "no CNI plugins"
      test ! -e /dev/kvm && echo "no /dev/kvm"
      cd /root/debs && ls -1 */*.deb`);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${process.version}$`, 'm'));
    assert.match(r.stdout, /^\/usr\/bin\/qemu-system-x86_64$/m);
    assert.match(r.stdout, /^\/usr\/bin\/nsenter$/m);
    assert.match(r.stdout, /^\/usr\/bin\/unshare$/m);
    assert.match(r.stdout, /^no CNI plugins$/m);
    assert.match(r.stdout, /^no \/dev\/kvm$/m);
    // Kept for the later tests, not installed: the four packages (with what they need), and nothing of QEMU's.
    assert.match(r.stdout, /^busybox-static\/busybox-static_.*\.deb$/m);
    assert.match(r.stdout, /^erofs-utils\/erofs-utils_.*\.deb$/m);
    assert.match(r.stdout, /^iproute2\/iproute2_.*\.deb$/m);
    assert.match(r.stdout, /^containernetworking-plugins\/containernetworking-plugins_.*\.deb$/m);
    assert.not.match(r.stdout, /\/qemu-.*\.deb$/m);
  });

  test('npm install of both tarballs, offline, uses the prebuilt binaries: nothing is compiled', async () => {
    const r = await user(`
      npm init -y >/dev/null
      npm install --offline --cache /root/npm-cache --foreground-scripts --no-audit --no-fund ./virtcontainers-[0-9]*.tgz ./virtcontainers-guest-kernel-*.tgz`);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /virtcontainers: using the prebuilt binaries in \/root\/app\/node_modules\/virtcontainers\/prebuilds\/linux-x64/);
    assert.not.match(r.stdout + r.stderr, /building from source|node-gyp rebuild|gyp info/);
    assert.not.ok(existsSync(join(root, APP.slice(1), 'node_modules/virtcontainers/build')), 'no build/ dir: nothing was compiled');
    const kernelPkg = JSON.parse(readFileSync(join(root, APP.slice(1), 'node_modules/@virtcontainers/guest-kernel-linux-x64/package.json'), 'utf8')) as { version: string };
    assert.match(basename(kernel.path), kernelPkg.version);
  });

  test('what the host lacks is named (exit 125): QEMU, then busybox, then the CNI plugins for the default network (or --network none), then mkfs.erofs', async () => {
    const noQemu = await user('mv /usr/bin/qemu-system-x86_64 /root/qemu.hidden; trap "mv /root/qemu.hidden /usr/bin/qemu-system-x86_64" EXIT; npx virtc run --rm -- echo hi');
    assert.is(noQemu.code, 125);
    assert.match(noQemu.stderr, /qemu-system-x86_64 not found \(looked in PATH\); install qemu-system-x86 \(Debian, Ubuntu\).*\[HYPERVISOR_UNAVAILABLE\]/);
    const noBusybox = await user('npx virtc run --rm -- echo hi');
    assert.is(noBusybox.code, 125);
    assert.match(noBusybox.stderr, /no static busybox at \/bin\/busybox or \/usr\/bin\/busybox.*busybox-static on Debian.*\[BUSYBOX_UNAVAILABLE\]/);
    assert.is(podsLeft(), '', 'no pod is left (--rm)');
    // The network is made before the VM boots, so it is the next thing missing: its CNI plugins
    // (not iproute2, which the root still lacks: the addon makes the namespace and the taps).
    const noCni = await user('dpkg -i /root/debs/busybox-static/*.deb >/dev/null && npx virtc run --rm -- echo hi');
    assert.is(noCni.code, 125);
    assert.match(noCni.stderr, /CNI plugin bridge not found in \/usr\/lib\/cni, \/usr\/libexec\/cni, \/opt\/cni\/bin; install containernetworking-plugins \(Debian, Ubuntu, Fedora\), or use network none \(--network none\) \[NETWORK_UNAVAILABLE\]/);
    assert.is(noCni.stdout, '');
    assertNoPodLeft();
    // As the message says: without a network, the VM boots and the image is what is missing next.
    const noErofs = await user('npx virtc run --rm --network none -- echo hi');
    assert.is(noErofs.code, 125);
    assert.match(noErofs.stderr, /mkfs\.erofs is not installed.*install erofs-utils.*\[IMAGE_BUILD_FAILED\]/);
    assert.equal(podsNow(), [], 'no other pod is left (--rm)');
  });

  test('with busybox-static and erofs-utils installed, npx virtc run --rm --network none -- echo hi prints hi (QEMU/TCG): no iproute2 or CNI plugins needed', async () => {
    const r = await user('dpkg -i /root/debs/erofs-utils/*.deb >/dev/null && npx virtc run --rm --network none -- echo hi');
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'hi\n');
    assert.equal(podsNow(), [], 'the pod is removed (--rm)');
  });

  test('with containernetworking-plugins installed (and no iproute2), npx virtc run --rm -- echo hi prints hi on the default bridge network (QEMU/TCG), made in the root\'s own network namespace', async () => {
    const install = await user('dpkg -i /root/debs/containernetworking-plugins/*.deb >/dev/null && npx virtc pod list');
    assert.is(install.code, 0, install.stderr);
    assert.is(podsLeft(), '', 'no pod is left by the failed starts');
    // The bridge stays after the pod is gone (CNI DEL leaves it), in the namespace of this command
    // only: a fresh one (only lo when it began), not the host's.
    // iproute2 is installed only after the run, to look at the bridge.
    const r = await user('! command -v ip && npx virtc run --rm -- echo hi && dpkg -i /root/debs/iproute2/*.deb >/dev/null && ip -o link show vc0 >&2 && echo "netns $(readlink /proc/self/ns/net)" >&2');
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, 'hi\n');
    assert.match(r.stderr, /^\d+: vc0: .* link\/ether /m);
    const netns = /^netns (net:\[\d+\])$/m.exec(r.stderr)?.[1];
    assert.ok(netns, 'the root\'s namespace is named');
    assert.is.not(netns, readlinkSync('/proc/self/ns/net'), 'the user\'s commands ran in a namespace of their own');
    assert.is(podsLeft(), '', 'the pod is removed (--rm)');
    assert.is(hostLinks(), hostLinksBefore, 'no link came or went in the host\'s network namespace');
  });

  test('the pod reaches its gateway (the bridge vc0 in the root\'s namespace)', async () => {
    const r = await user('npx virtc run --rm -- ping -c 1 -W 10 10.231.0.1');
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^1 packets transmitted, 1 packets received/m);
    assert.is(podsLeft(), '', 'the pod is removed (--rm)');
  });
}

test.run();
