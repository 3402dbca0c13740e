// Builds the npm package @virtcontainers/guest-kernel-linux-x64 from Debian's cloud kernel .deb:
// the bzImage, only the modules the guest initrd loads (the set src/guest/modules.ts resolves, in
// its load order), a manifest with every file's sha256, the license and where the source is.
// Then `npm pack`s it. Same .deb in, same bytes out: no timestamps or host paths are written, files
// are copied in sorted order, and npm pack gives every entry a fixed mtime.
//
// Usage: npm run guest-kernel-package -- [--deb FILE] [--out DIR] [--pack-destination DIR] [--no-pack]
//   --deb   the linux-image-*-cloud-amd64 .deb (default: `apt-get download` of the one
//           linux-image-cloud-amd64 depends on)
//   --out   the package directory to (re)create (default: build/guest-kernel)
//   --pack-destination  where the tarball goes (default: the parent of --out)
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveDependency, run } from '../src/guest/apt.js';
import { GuestError } from '../src/guest/errors.js';
import { bzImageRelease, KERNEL_FLAVORS, kernelLayout } from '../src/guest/kernel.js';
import {
  KERNEL_PACKAGE_NAME, MANIFEST_FILE, MANIFEST_FORMAT, kernelPackageVersion, verifyKernelPackage,
  type KernelPackageManifest,
} from '../src/guest/kernel-package.js';
import { GUEST_MODULES, resolveModules } from '../src/guest/modules.js';

/** npm pack's own fixed entry mtime; the directory gets it too, so a copy of it is reproducible. */
const FIXED_MTIME = new Date('1985-10-26T08:15:00.000Z');
/** The full license texts Debian's copyright file points to (/usr/share/common-licenses/...). */
const LICENSE_TEXTS = ['GPL-2', 'LGPL-2.1'];

export interface BuildKernelPackageOptions {
  /** The .deb; default: apt-get download of the current linux-image-*-cloud-amd64. */
  deb?: string;
  /** Package directory, removed and recreated. */
  out: string;
  /** Directory for the tarball; false: do not pack. */
  packDestination: string | false;
  /** Where the license texts are read from (default /usr/share/common-licenses). */
  commonLicenses?: string;
  onProgress?: (msg: string) => void;
}

export interface BuiltKernelPackage {
  dir: string;
  version: string;
  manifest: KernelPackageManifest;
  tarball?: { path: string; size: number; unpackedSize: number; integrity: string };
}

export async function buildKernelPackage(opts: BuildKernelPackageOptions): Promise<BuiltKernelPackage> {
  const progress = opts.onProgress ?? (() => {});
  const temp = await mkdtemp(join(tmpdir(), 'vc-guest-kernel-'));
  try {
    const deb = opts.deb !== undefined ? resolve(opts.deb) : await downloadDeb(temp, progress);
    const fields = await debFields(deb);
    progress(`unpacking ${fields.package} ${fields.version} (dpkg-deb -x)`);
    const root = join(temp, 'root');
    await run('dpkg-deb', ['-x', deb, root]);
    const kernel = await kernelLayout(root);
    const headerRelease = bzImageRelease(await readFile(kernel.kernelPath));
    if (headerRelease !== kernel.release) {
      throw new GuestError('INVALID_OPTION', `deb: ${deb}: bzImage says release ${headerRelease}, its modules dir is ${kernel.release}`);
    }
    const plan = await resolveModules(kernel.modulesDir, GUEST_MODULES, { release: kernel.release });
    const version = kernelPackageVersion(fields.version);

    const out = resolve(opts.out);
    await rm(out, { recursive: true, force: true });
    const modulesDir = `lib/modules/${kernel.release}`;
    const copies: Array<[from: string, to: string]> = [
      [kernel.kernelPath, `boot/vmlinuz-${kernel.release}`],
      [join(root, 'boot', `config-${kernel.release}`), `boot/config-${kernel.release}`],
      [join(kernel.modulesDir, 'modules.builtin'), `${modulesDir}/modules.builtin`],
      ...plan.load.map((m): [string, string] => [m.path, `${modulesDir}/${m.relPath}`]),
      [join(root, 'usr/share/doc', fields.package, 'copyright'), 'COPYRIGHT'],
      ...LICENSE_TEXTS.map((l): [string, string] => [join(opts.commonLicenses ?? '/usr/share/common-licenses', l), l]),
    ];
    for (const [from, to] of copies.sort((a, b) => (a[1] < b[1] ? -1 : 1))) {
      await mkdir(dirname(join(out, to)), { recursive: true });
      await copyFile(from, join(out, to)).catch((err: NodeJS.ErrnoException) => {
        throw new GuestError('INVALID_OPTION', `cannot copy ${from} to ${to}: ${err.code ?? err.message}`, { cause: err });
      });
    }
    await writeFile(join(out, 'README.md'), readme(fields, kernel.release, version, plan.load.map((m) => m.name), plan.builtin));

    const files: KernelPackageManifest['files'] = {};
    for (const rel of await listFiles(out)) {
      const data = await readFile(join(out, rel));
      files[rel] = { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    }
    const manifest: KernelPackageManifest = {
      format: MANIFEST_FORMAT,
      release: kernel.release,
      debian: { package: fields.package, version: fields.version, source: fields.source, sourceVersion: fields.sourceVersion },
      kernel: `boot/vmlinuz-${kernel.release}`,
      modulesDir,
      modules: plan.load.map((m) => m.relPath),
      builtin: plan.builtin,
      files,
    };
    await writeFile(join(out, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(join(out, 'package.json'), `${JSON.stringify(packageJson(version, kernel.release, fields.version), null, 2)}\n`);
    await normalize(out);

    // The package must work the way resolveKernel and the initrd builder will use it.
    await verifyKernelPackage(out);
    const again = await resolveModules(join(out, modulesDir), GUEST_MODULES, { release: kernel.release });
    if (again.load.map((m) => m.relPath).join() !== manifest.modules.join()) {
      throw new GuestError('MODULE_MISMATCH', `${out}: modules resolve to ${again.load.map((m) => m.name).join(',')} in the package, not the manifest's order`);
    }
    progress(`wrote ${out}: ${kernel.release}, version ${version}, ${plan.load.length} modules`);
    const built: BuiltKernelPackage = { dir: out, version, manifest };
    if (opts.packDestination !== false) built.tarball = await pack(out, resolve(opts.packDestination));
    return built;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

interface DebFields { package: string; version: string; source: string; sourceVersion: string; signedSource?: string }

async function downloadDeb(temp: string, progress: (msg: string) => void): Promise<string> {
  const { metapackage, pattern } = KERNEL_FLAVORS.cloud;
  const pkg = await resolveDependency(metapackage, pattern);
  progress(`downloading ${pkg} (apt-get download)`);
  await run('apt-get', ['download', pkg], { cwd: temp });
  const deb = (await readdir(temp)).find((f) => f.endsWith('.deb'));
  if (!deb) throw new GuestError('KERNEL_UNAVAILABLE', `apt-get download ${pkg} left no .deb file`);
  return join(temp, deb);
}

/**
 * Package, Version and where the source is. Debian's kernel images come from linux-signed-amd64
 * (Source: linux-signed-amd64 (6.1.192+3)), which only adds Secure Boot signatures to the
 * binaries built from the source package `linux`, whose version is the binary's Version.
 */
async function debFields(deb: string): Promise<DebFields> {
  const text = await run('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Source', 'Architecture']);
  const field = (name: string) => new RegExp(`^${name}:\\s*(.+?)\\s*$`, 'm').exec(text)?.[1];
  const pkg = field('Package');
  const version = field('Version');
  const arch = field('Architecture');
  if (!pkg || !KERNEL_FLAVORS.cloud.pattern.test(pkg)) throw new GuestError('INVALID_OPTION', `deb: ${deb}: Package ${pkg} is not a linux-image-*-cloud-amd64`);
  if (!version) throw new GuestError('INVALID_OPTION', `deb: ${deb}: no Version field`);
  if (arch !== 'amd64') throw new GuestError('INVALID_OPTION', `deb: ${deb}: Architecture ${arch} is not amd64`);
  const m = /^(\S+)(?:\s+\((\S+)\))?$/.exec(field('Source') ?? pkg);
  const source = m?.[1] ?? pkg;
  if (source.startsWith('linux-signed-')) return { package: pkg, version, source: 'linux', sourceVersion: version, signedSource: `${source} ${m?.[2] ?? version}` };
  return { package: pkg, version, source, sourceVersion: m?.[2] ?? version };
}

function packageJson(version: string, release: string, debianVersion: string) {
  return {
    name: KERNEL_PACKAGE_NAME,
    version,
    description: `Debian's cloud kernel ${release} (Debian ${debianVersion}) and the modules the virtcontainers guest loads`,
    license: 'GPL-2.0-only',
    os: ['linux'],
    cpu: ['x64'],
    // Nothing here is JavaScript: virtcontainers reads the files by path after resolving package.json.
    exports: { './package.json': './package.json', './manifest.json': './manifest.json' },
    files: ['boot', 'lib', MANIFEST_FILE, 'README.md', 'COPYRIGHT', ...LICENSE_TEXTS],
  };
}

function readme(f: DebFields, release: string, version: string, modules: string[], builtin: string[]): string {
  const enc = encodeURIComponent;
  return `# ${KERNEL_PACKAGE_NAME} ${version}

The guest kernel of [virtcontainers](https://www.npmjs.com/package/virtcontainers): Debian's cloud
kernel **${release}** from the package \`${f.package}\` version **${f.version}**, unchanged, with only
the kernel modules the virtcontainers guest initrd loads. virtcontainers finds this package when it
is installed beside it (it is an optional dependency) and boots pods with it; without it, it fetches
the same kernel with \`apt-get download\` on Debian hosts.

Package version ${version} stands for Debian version ${f.version}: upstream X.Y.Z with Debian
revision N is published as X.Y.(Z×1000+N), which npm orders as dpkg does.

## Contents

- \`boot/vmlinuz-${release}\`: the kernel image (bzImage), and \`boot/config-${release}\`, its configuration
- \`lib/modules/${release}/\`: ${modules.join(', ')} (in load order), and \`modules.builtin\`${builtin.length > 0 ? `; built in: ${builtin.join(', ')}` : ''}
- \`${MANIFEST_FILE}\`: release, Debian version, modules in load order, size and sha256 of every file
- \`COPYRIGHT\`: Debian's copyright file of the kernel package; ${LICENSE_TEXTS.map((l) => `\`${l}\``).join(' and ')}: the license texts it refers to

## License

The Linux kernel is licensed under the GNU General Public License version 2 (GPL-2.0-only); the
parts under other, compatible licenses are listed in \`COPYRIGHT\`.

## Source

The kernel is built from the Debian source package \`${f.source}\` version ${f.sourceVersion}${f.signedSource ? ` (the image
is the Secure Boot signed one from \`${f.signedSource}\`, which only adds signatures)` : ''}:

- https://snapshot.debian.org/package/${enc(f.source)}/${enc(f.sourceVersion)}/
- https://sources.debian.org/src/${enc(f.source)}/${enc(f.sourceVersion)}/
- on a Debian host: \`apt-get source ${f.source}=${f.sourceVersion}\`

Built by \`scripts/guest-kernel-package.ts\` in the virtcontainers repository.
`;
}

async function listFiles(dir: string, rel = ''): Promise<string[]> {
  const entries = await readdir(join(dir, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, child)));
    else out.push(child);
  }
  return out;
}

/** Modes and mtimes independent of the umask and the clock. */
async function normalize(dir: string): Promise<void> {
  for (const rel of await listFiles(dir)) {
    await chmod(join(dir, rel), 0o644);
    await utimes(join(dir, rel), FIXED_MTIME, FIXED_MTIME);
  }
}

async function pack(dir: string, destination: string): Promise<NonNullable<BuiltKernelPackage['tarball']>> {
  await mkdir(destination, { recursive: true });
  const out = await run('npm', ['pack', '--json', '--pack-destination', destination], { cwd: dir });
  const info = (JSON.parse(out) as Array<{ filename: string; size: number; unpackedSize: number; integrity: string }>)[0];
  if (!info) throw new GuestError('INVALID_OPTION', `npm pack in ${dir} printed no result: ${out}`);
  return { path: join(destination, info.filename), size: info.size, unpackedSize: info.unpackedSize, integrity: info.integrity };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      deb: { type: 'string' },
      out: { type: 'string', default: 'build/guest-kernel' },
      'pack-destination': { type: 'string' },
      'no-pack': { type: 'boolean', default: false },
    },
  });
  const out = resolve(values.out);
  const built = await buildKernelPackage({
    deb: values.deb,
    out,
    packDestination: values['no-pack'] ? false : values['pack-destination'] ?? dirname(out),
    onProgress: (msg) => console.error(`guest-kernel-package: ${msg}`),
  });
  console.error(`guest-kernel-package: ${KERNEL_PACKAGE_NAME}@${built.version} (${built.manifest.release}, Debian ${built.manifest.debian.version})`);
  if (built.tarball) {
    console.error(`guest-kernel-package: ${built.tarball.size} bytes packed, ${built.tarball.unpackedSize} unpacked, ${built.tarball.integrity}`);
    console.log(built.tarball.path);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: Error) => {
    console.error(`guest-kernel-package: ${err.message}`);
    process.exit(1);
  });
}
