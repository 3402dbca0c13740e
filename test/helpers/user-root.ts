// A user's machine for the install test: Debian bookworm minbase (debootstrap) with only
// qemu-system-x86 installed, plus the .debs of busybox-static, erofs-utils, iproute2 and
// containernetworking-plugins kept in /root/debs/<package>/ (each with the dependencies the root
// lacks; not installed) so the test can add them offline, one by one, once it has seen what is
// missing without them. Minbase has util-linux (nsenter, unshare) but no iproute2.
// Built once and cached as a tarball under the project cache (`<cache>/user-root/<key>.tar`),
// keyed by the mirror, suite and package lists; a build goes to a temp dir and is renamed into
// place, so a killed build leaves no half root (its temp dir is removed by a later build after an
// hour). Each test run unpacks a fresh copy, so nothing a run installs reaches the cache.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, removeStaleTemps } from '../../src/guest/cache.js';
import { NAMESPACES, NAMESPACES_COMMAND, runInRoot } from './chroot.js';

export const USER_ROOT_SUITE = 'bookworm';
/** Installed in the root: what the user's host must have for QEMU pods. */
export const USER_ROOT_PACKAGES: readonly string[] = ['qemu-system-x86'];
/**
 * Downloaded into /root/debs/<package>/, not installed: what the package also needs from the host
 * (the last two for the default bridge network of pods; `--network none` needs neither).
 */
export const USER_ROOT_LATER_PACKAGES: readonly string[] = ['busybox-static', 'erofs-utils', 'iproute2', 'containernetworking-plugins'];
/** Bump when the build steps change what the root contains. */
const FORMAT = 3;

/**
 * The Debian mirror this machine's apt uses for `suite` (deb822 .sources or one-line .list
 * files; security and third-party archives are skipped), else deb.debian.org.
 */
export function debianMirror(suite = USER_ROOT_SUITE, etc = '/etc/apt'): string {
  const files = [join(etc, 'sources.list')];
  try {
    files.push(...readdirSync(join(etc, 'sources.list.d')).filter((f) => /\.(list|sources)$/.test(f)).sort().map((f) => join(etc, 'sources.list.d', f)));
  } catch { /* no sources.list.d */ }
  for (const file of files) {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    const entries = file.endsWith('.sources')
      ? text.split(/\n\s*\n/).map((stanza) => ({
        uris: /^URIs:\s*(.+)$/mi.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [],
        suites: /^Suites:\s*(.+)$/mi.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [],
        enabled: !/^Enabled:\s*no/mi.test(stanza) && /^Types:.*\bdeb\b/mi.test(stanza),
      }))
      : text.split('\n').map((l) => /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(l)).filter((m) => m !== null)
        .map((m) => ({ uris: [m[1]!], suites: [m[2]!], enabled: true }));
    for (const e of entries) {
      const uri = e.uris.find((u) => /^https?:\/\//.test(u));
      if (e.enabled && uri && e.suites.includes(suite)) return uri.replace(/\/+$/, '');
    }
  }
  return 'http://deb.debian.org/debian';
}

export function userRootKey(mirror: string): string {
  const spec = { FORMAT, suite: USER_ROOT_SUITE, variant: 'minbase', mirror, installed: USER_ROOT_PACKAGES, later: USER_ROOT_LATER_PACKAGES };
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);
}

export function userRootTarball(mirror: string): string {
  return join(cacheDir(), 'user-root', `${USER_ROOT_SUITE}-minbase-${userRootKey(mirror)}.tar`);
}

/** Why the root can be neither found in the cache nor built here, or null. */
export function userRootProblem(mirror: string): string | null {
  if (existsSync(userRootTarball(mirror))) return null;
  if (spawnSync('sh', ['-c', 'command -v debootstrap']).status !== 0) return 'debootstrap is not in PATH and no cached root exists (scripts/setup.sh installs it)';
  // A TCP connect to the mirror's host (bash's /dev/tcp): enough to tell "offline" from "slow".
  const url = new URL(mirror);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const reach = spawnSync('timeout', ['10', 'bash', '-c', `exec 3<>/dev/tcp/${url.hostname}/${port}`]);
  if (reach.status !== 0) return `the Debian mirror ${mirror} is unreachable and no cached root exists`;
  return null;
}

// Inside the fresh minbase root, with the network: no docs/man/locales (smaller, faster), then
// the packages without recommends (qemu-system-x86 would pull in a GUI stack), then each later
// package's .debs alone in a directory of its own, with whatever of its dependencies the root
// lacks (apt-get clean before each: apt keeps what it fetched in its archive dir), and no apt lists
// (so nothing in the root can fetch busybox-static by itself).
const BUILD_SCRIPT = `
printf '%s\\n' 'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' \\
  'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/info/*' > /etc/dpkg/dpkg.cfg.d/01-vc-nodoc
apt-get install -y -q --no-install-recommends ${USER_ROOT_PACKAGES.join(' ')}
for p in ${USER_ROOT_LATER_PACKAGES.join(' ')}; do
  apt-get clean
  apt-get install -y -q --no-install-recommends --download-only "$p"
  mkdir -p "/root/debs/$p"
  mv /var/cache/apt/archives/*.deb "/root/debs/$p/"
done
apt-get clean
rm -rf /var/lib/apt/lists/* /etc/resolv.conf
cd /root/debs && ls -1 */*.deb
`;

/**
 * The cached root tarball, built first when missing. `log` gets every step (debootstrap and apt
 * are quiet enough). Returns how long a build took, or 0 when the cache had it.
 */
export async function cachedUserRoot(log: (msg: string) => void): Promise<{ tarball: string; buildMs: number }> {
  const mirror = debianMirror();
  const tarball = userRootTarball(mirror);
  if (existsSync(tarball)) return { tarball, buildMs: 0 };
  const parent = join(cacheDir(), 'user-root');
  mkdirSync(parent, { recursive: true });
  await removeStaleTemps(parent);
  const temp = mkdtempSync(join(parent, '.tmp-root-'));
  const t0 = Date.now();
  try {
    const root = join(temp, 'root');
    log(`user root: debootstrap --variant=minbase ${USER_ROOT_SUITE} from ${mirror} (cold cache)`);
    // In its own mount namespace too: debootstrap mounts /proc and /sys in the target.
    const boot = spawnSync(NAMESPACES_COMMAND, [...NAMESPACES, 'debootstrap', '--variant=minbase', USER_ROOT_SUITE, root, mirror],
      { encoding: 'utf8', timeout: 15 * 60_000 });
    if (boot.status !== 0) throw new Error(`debootstrap failed (exit ${boot.status}): ${(boot.stderr || boot.stdout).trim().split('\n').slice(-5).join(' / ')}`);
    log(`user root: debootstrap took ${Date.now() - t0} ms; installing ${USER_ROOT_PACKAGES.join(', ')} (apt, no recommends)`);
    copyFileSync('/etc/resolv.conf', join(root, 'etc/resolv.conf'));
    const apt = await runInRoot(root, BUILD_SCRIPT, { network: true, env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 15 * 60_000 });
    if (apt.code !== 0) throw new Error(`apt in the new root failed (exit ${apt.code}): ${apt.stderr.trim().split('\n').slice(-5).join(' / ')}`);
    log(`user root: kept for later: ${apt.stdout.trim().split('\n').filter((l) => l.endsWith('.deb')).join(', ')}`);
    const tar = spawnSync('tar', ['-C', root, '--numeric-owner', '-cf', join(temp, 'root.tar'), '.'], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar of the new root failed: ${tar.stderr.trim()}`);
    renameSync(join(temp, 'root.tar'), tarball);
    // Roots of other keys (an older FORMAT, another mirror) would only take up space.
    for (const old of readdirSync(parent).filter((f) => f.endsWith('.tar') && join(parent, f) !== tarball)) rmSync(join(parent, old), { force: true });
    log(`user root: built and cached in ${Date.now() - t0} ms: ${tarball}`);
    return { tarball, buildMs: Date.now() - t0 };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** Unpacks the cached root into `dest` (an empty directory), owners and modes kept. */
export function unpackUserRoot(tarball: string, dest: string): void {
  const r = spawnSync('tar', ['-C', dest, '--numeric-owner', '-xpf', tarball], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`unpacking ${tarball} into ${dest} failed: ${r.stderr.trim()}`);
}
