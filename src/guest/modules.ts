// Which kernel modules the guest must load, and in which order, computed in pure TypeScript from
// the modules themselves: Debian's kernel .deb ships no modules.dep, so we read each .ko's
// `.modinfo` section (`name=`, `depends=`, `vermagic=`) and sort the dependency graph ourselves.
// Modules listed in modules.builtin are part of the kernel image and are simply skipped.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { elfSectionData } from './elf.js';
import { GuestError } from './errors.js';

/** What the agent needs: virtio transports and devices, vsock, the filesystems of containers, the NIC. */
export const GUEST_MODULES: readonly string[] = [
  'virtio', 'virtio_ring', 'virtio_mmio', 'virtio_pci', 'virtio_console', 'virtio_blk',
  'vsock', 'vmw_vsock_virtio_transport_common', 'vmw_vsock_virtio_transport', 'overlay', 'erofs',
  // QEMU hot-plugs container images as SCSI disks on a virtio-scsi controller (microvm has no
  // PCI hotplug, and virtio-mmio none at all).
  'virtio_scsi', 'sd_mod',
  // Pod networking (DESIGN.md §10): the NIC and the modules virtio_net depends on, dependencies
  // first (resolveModules orders by .modinfo anyway).
  'failover', 'net_failover', 'virtio_net',
];

export interface ModuleInfo {
  name?: string;
  depends: string[];
  vermagic?: string;
}

export interface ResolvedModule {
  name: string;
  /** Path relative to the modules dir, e.g. kernel/drivers/virtio/virtio.ko. */
  relPath: string;
  path: string;
  depends: string[];
}

export interface ModulePlan {
  /** Modules to load, dependencies first. */
  load: ResolvedModule[];
  /** Wanted modules (or dependencies) that are built into the kernel and need no loading. */
  builtin: string[];
}

/** Module names treat '-' and '_' alike (the kernel does); we use the '_' spelling. */
export function normalizeModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** Parses the NUL-separated key=value strings of a module's .modinfo section. */
export function parseModinfo(ko: Buffer, what: string): ModuleInfo {
  const section = elfSectionData(ko, '.modinfo', what);
  if (section === undefined) throw new GuestError('ELF_INVALID', `${what}: no .modinfo section (not a kernel module?)`);
  const info: ModuleInfo = { depends: [] };
  for (const item of section.toString('latin1').split('\0')) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue; // padding between entries
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (key === 'name') info.name = value;
    else if (key === 'vermagic') info.vermagic = value;
    else if (key === 'depends') info.depends = value.split(',').map((d) => d.trim()).filter((d) => d !== '').map(normalizeModuleName);
  }
  return info;
}

/** Names listed in <modulesDir>/modules.builtin (lines like kernel/fs/binfmt_script.ko). */
export async function readBuiltinModules(modulesDir: string): Promise<Set<string>> {
  let text: string;
  try {
    text = await readFile(join(modulesDir, 'modules.builtin'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw err;
  }
  const names = text.split('\n').map((l) => l.trim()).filter((l) => l !== '').map(moduleNameOfPath);
  return new Set(names.filter((n): n is string => n !== undefined));
}

/**
 * Every module file below `modulesDir` (relative paths, sorted), plain or compressed. Symlinks are
 * not followed: installed module trees have `build`/`source` links into kernel headers.
 */
export async function findModuleFiles(modulesDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (rel: string) => {
    const entries = await readdir(join(modulesDir, rel), { withFileTypes: true });
    for (const e of entries) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(child);
      else if (e.isFile() && moduleNameOfPath(child) !== undefined) found.push(child);
    }
  };
  await walk('');
  return found.sort();
}

/**
 * Resolves `wanted` (default GUEST_MODULES) plus their transitive dependencies in `modulesDir`.
 * With `release`, each module's vermagic must be for that kernel: the kernel refuses others.
 */
export async function resolveModules(
  modulesDir: string,
  wanted: readonly string[] = GUEST_MODULES,
  options: { release?: string } = {},
): Promise<ModulePlan> {
  const builtinSet = await readBuiltinModules(modulesDir);
  const files = indexByName(await findModuleFiles(modulesDir));
  const graph = new Map<string, ResolvedModule>();
  const builtin = new Set<string>();

  const visit = async (name: string, neededBy: string | undefined): Promise<void> => {
    if (graph.has(name) || builtin.has(name)) return;
    if (builtinSet.has(name)) {
      builtin.add(name);
      return;
    }
    const rel = files.get(name);
    const by = neededBy ? ` (needed by ${neededBy})` : '';
    if (!rel) throw new GuestError('MODULE_NOT_FOUND', `module ${name}${by}: no ${name}.ko in ${modulesDir} and not listed in its modules.builtin`);
    if (!rel.endsWith('.ko')) {
      throw new GuestError('MODULE_UNSUPPORTED', `module ${name}${by}: only a compressed ${rel} exists in ${modulesDir}; the guest loads plain .ko files`);
    }
    const path = join(modulesDir, rel);
    const info = parseModinfo(await readFile(path), path);
    if (info.name !== undefined && normalizeModuleName(info.name) !== name) {
      throw new GuestError('MODULE_MISMATCH', `${path}: file is named for module ${name} but declares name=${info.name}`);
    }
    const builtFor = info.vermagic?.split(' ')[0];
    if (options.release !== undefined && builtFor !== undefined && builtFor !== options.release) {
      throw new GuestError('MODULE_MISMATCH', `${path}: module built for kernel ${builtFor}, but the kernel is ${options.release}`);
    }
    graph.set(name, { name, relPath: rel, path, depends: [...new Set(info.depends)].sort() });
    for (const dep of graph.get(name)!.depends) await visit(dep, name);
  };
  for (const name of wanted) await visit(normalizeModuleName(name), undefined);

  const deps = new Map([...graph].map(([n, m]) => [n, m.depends.filter((d) => graph.has(d))]));
  const order = loadOrder(deps, wanted.map(normalizeModuleName).filter((n) => graph.has(n)));
  return { load: order.map((n) => graph.get(n)!), builtin: [...builtin].sort() };
}

/**
 * Topological order of `roots` and everything they depend on, dependencies first (depth-first,
 * in the given order, so the result is deterministic). A cycle is an error naming its members.
 */
export function loadOrder(deps: ReadonlyMap<string, readonly string[]>, roots: readonly string[]): string[] {
  const done = new Set<string>();
  const path: string[] = [];
  const order: string[] = [];
  const visit = (name: string) => {
    if (done.has(name)) return;
    const at = path.indexOf(name);
    if (at >= 0) {
      throw new GuestError('MODULE_CYCLE', `module dependency cycle: ${[...path.slice(at), name].join(' -> ')}`);
    }
    path.push(name);
    for (const dep of deps.get(name) ?? []) visit(dep);
    path.pop();
    done.add(name);
    order.push(name);
  };
  for (const root of roots) visit(root);
  return order;
}

/** kernel/drivers/virtio/virtio_pci.ko(.xz) → virtio_pci; undefined for anything but a module. */
function moduleNameOfPath(path: string): string | undefined {
  const m = /(?:^|\/)([^/]+)\.ko(?:\.(?:xz|zst|gz))?$/.exec(path);
  return m?.[1] ? normalizeModuleName(m[1]) : undefined;
}

/**
 * name → relative path. When one name exists twice, a plain .ko beats a compressed one and
 * `updates/` beats the rest (depmod's default search order); otherwise the first in sorted order.
 */
function indexByName(files: readonly string[]): Map<string, string> {
  const rank = (rel: string) => (rel.endsWith('.ko') ? 0 : 2) + (rel.startsWith('updates/') ? 0 : 1);
  const index = new Map<string, string>();
  for (const rel of files) {
    const name = moduleNameOfPath(rel)!;
    const current = index.get(name);
    if (current === undefined || rank(rel) < rank(current)) index.set(name, rel);
  }
  return index;
}
