// Real OCI images for tests, made with umoci from a busybox root filesystem.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** A minimal root filesystem: static busybox with its applet links and a few users. */
export function busyboxRootfs(dir: string, users = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n'): string {
  for (const sub of ['bin', 'etc', 'tmp', 'root', 'home/app', 'usr/bin', 'sbin', 'usr/sbin']) mkdirSync(join(dir, sub), { recursive: true });
  cpSync('/bin/busybox', join(dir, 'bin/busybox'));
  const applets = execFileSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const applet of applets) {
    const target = join(dir, applet);
    if (applet === 'bin/busybox' || existsSync(target)) continue;
    mkdirSync(join(target, '..'), { recursive: true });
    symlinkSync('/bin/busybox', target);
  }
  writeFileSync(join(dir, 'etc/passwd'), users);
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\napp:x:1000:\n');
  return dir;
}

export interface OciImageOptions {
  env?: string[];
  workingDir?: string;
  user?: string;
  cmd?: string[];
  entrypoint?: string[];
  /** Files added in the image's one layer on top of the busybox rootfs. */
  files?: Record<string, string>;
  /** Host files copied into the layer, mode and all (image path → host path), e.g. a static binary. */
  copies?: Record<string, string>;
}

/** An OCI image layout at `layout` with tag `tag`, built by umoci (real layers, real config). */
export function ociImage(workdir: string, layout: string, tag: string, options: OciImageOptions = {}): string {
  const umoci = (...args: string[]) => execFileSync('umoci', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  umoci('init', '--layout', layout);
  umoci('new', '--image', `${layout}:${tag}`);
  const bundle = join(workdir, `bundle-${tag}`);
  umoci('unpack', '--image', `${layout}:${tag}`, bundle);
  busyboxRootfs(join(bundle, 'rootfs'));
  for (const [path, content] of Object.entries(options.files ?? {})) {
    mkdirSync(join(bundle, 'rootfs', path, '..'), { recursive: true });
    writeFileSync(join(bundle, 'rootfs', path), content);
  }
  for (const [path, from] of Object.entries(options.copies ?? {})) {
    mkdirSync(join(bundle, 'rootfs', path, '..'), { recursive: true });
    cpSync(from, join(bundle, 'rootfs', path));
  }
  umoci('repack', '--image', `${layout}:${tag}`, bundle);
  const config: string[] = [];
  for (const e of options.env ?? []) config.push('--config.env', e);
  if (options.workingDir) config.push('--config.workingdir', options.workingDir);
  if (options.user) config.push('--config.user', options.user);
  for (const c of options.cmd ?? []) config.push('--config.cmd', c);
  for (const e of options.entrypoint ?? []) config.push('--config.entrypoint', e);
  if (config.length) umoci('config', '--image', `${layout}:${tag}`, ...config);
  return layout;
}

