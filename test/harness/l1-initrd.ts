// The initrd of the nested-KVM harness's L1 VM: busybox, the modules L1 needs (virtio-mmio, the
// virtio-serial port that carries the command's output, 9p for the host's root and the scratch
// dir, overlay for a writable cache, kvm_amd for /dev/kvm), and a busybox-sh /init that builds the
// command's view of the machine and runs it. Laid out by the guest initrd's own planner
// (src/guest/initrd.ts: /init, /dev/console, /etc/vc-modules in load order, busybox links),
// written by our cpio writer and cached by content in <cache>/initrd/<digest>.cpio like a pod's.
//
// Nothing per run is inside: /init reads its parameters from the control directory the host
// names on the kernel command line (vc_ctl=DIR), through the read-only share of the host's root.
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { findBusybox } from '../../src/guest/busybox.js';
import { cacheDir, removeStaleTemps, writeFileAtomic } from '../../src/guest/cache.js';
import { cpioChunks } from '../../src/guest/cpio.js';
import { initrdDigest, planInitrd, type InitrdSpec } from '../../src/guest/initrd.js';
import { resolveModules } from '../../src/guest/modules.js';

/** Modules /init loads, before their dependencies are added (resolveModules orders them). */
export const L1_MODULES: readonly string[] = [
  'virtio_mmio', 'virtio_console', '9p', '9pnet_virtio', 'overlay', 'kvm_amd',
  // Pod networks in L1: the CNI bridge and veths, the taps, the tc ingress + mirred redirects.
  'tun', 'veth', 'bridge', 'sch_ingress', 'cls_u32', 'act_mirred',
];

/** The virtio-serial port name of the command's output channel. */
export const L1_OUTPUT_PORT = 'vc-out';
/** 9p mount tags. */
export const L1_ROOT_TAG = 'host';
export const L1_SCRATCH_TAG = 'scratch';
/**
 * Markers /init writes on the output port, each between two \x1e bytes: `VC-L1-START <nonce>`
 * just before the command runs, `VC-L1-EXIT <nonce> <code>` after it, `VC-L1-FAIL <nonce> <why>`
 * when L1 cannot be set up (nonce "none" if it failed before reading it).
 */
export const L1_MARK_PREFIX = 'VC-L1-';

/**
 * /init. Per-run values come from $ctl/params.sh (shell assignments written by the host: VC_NONCE,
 * VC_SCRATCH, VC_CACHE) and $ctl/run.sh (runs the command in the chroot with its env and cwd).
 */
export function l1InitScript(): string {
  return `#!/bin/busybox sh
# /init of the nested-KVM harness's L1 VM (written by test/harness/l1-initrd.ts).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
R=/newroot
OUT=
VC_NONCE=none
say() { echo "vc-l1: $*" > /dev/console; }
die() {
  say "FAIL: $*"
  dmesg | grep -i -e kvm -e svm -e 9p -e virtio -e overlay -e error -e fail > /dev/console
  [ -n "$OUT" ] && printf '\\036${L1_MARK_PREFIX}FAIL %s %s\\036' "$VC_NONCE" "$*" > "$OUT"
  poweroff -f; sleep 30; exit 1
}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# kvm.ko without the NX-hugepage mitigation (AMD is not affected): its per-VM recovery thread
# locked up L1 for minutes under host load (soft lockup in kvm-nx-lpage-recovery); never starts it.
while read -r m; do
  case "$m" in */kvm.ko) p=nx_huge_pages=never;; *) p=;; esac
  insmod "$m" $p > /dev/console 2>&1 || say "insmod $m $p failed"
done < /etc/vc-modules
hostname vc-l1
ctl=
for a in $(cat /proc/cmdline); do case "$a" in vc_ctl=*) ctl="\${a#vc_ctl=}";; esac; done

# The output port: virtio-serial announces ports (and their names) asynchronously.
i=0
while [ -z "$OUT" ] && [ $i -lt 400 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = ${L1_OUTPUT_PORT} ] && OUT="/dev/\${p##*/}"
  done
  [ -z "$OUT" ] && sleep 0.025; i=$((i + 1))
done
[ -n "$OUT" ] || die "no virtio-serial port named ${L1_OUTPUT_PORT}"

mkdir -p $R
o=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $o,ro,cache=loose ${L1_ROOT_TAG} $R || die "cannot mount the host root (9p tag ${L1_ROOT_TAG})"
[ -n "$ctl" ] && [ -f "$R$ctl/params.sh" ] || die "no control dir (vc_ctl=$ctl) in the host root"
. "$R$ctl/params.sh"
cp "$R$ctl/run.sh" /run.sh || die "cannot read $ctl/run.sh"
[ -c /dev/kvm ] || die "no /dev/kvm: kvm_amd did not load (is SVM in the CPU model?)"

# Writable layers live in a tmpfs outside the chroot. /tmp is an overlay, not a bare tmpfs: the
# host's /tmp stays visible below (a project checked out under /tmp must still be found there).
mkdir -p /upper
mount -t tmpfs -o mode=755 tmpfs /upper || die "tmpfs for the writable layers"
mkdir -p /upper/tmp/u /upper/tmp/w /upper/cache/u /upper/cache/w
chmod 1777 /upper/tmp/u
mount -t overlay -o lowerdir=$R/tmp,upperdir=/upper/tmp/u,workdir=/upper/tmp/w overlay $R/tmp || die "cannot overlay /tmp"
mount -t tmpfs -o mode=755 tmpfs $R/run || die "tmpfs /run"
mount -t proc proc $R/proc || die "proc"
mount -t sysfs sysfs $R/sys || die "sysfs"
mount -t devtmpfs devtmpfs $R/dev || die "devtmpfs"
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts || die "devpts"
mount -t tmpfs -o mode=1777 shm $R/dev/shm || die "/dev/shm"
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup || die "cgroup2"
echo "+cpu +memory +pids" > $R/sys/fs/cgroup/cgroup.subtree_control || die "cannot enable cpu, memory, pids in the root cgroup"
if [ -n "$VC_SCRATCH" ]; then
  mkdir -p "$R$VC_SCRATCH" 2>/dev/null
  mount -t 9p -o $o,cache=mmap ${L1_SCRATCH_TAG} "$R$VC_SCRATCH" || die "cannot mount the scratch dir at $VC_SCRATCH"
fi
if [ -n "$VC_CACHE" ] && [ -d "$R$VC_CACHE" ]; then
  # Writes to the cache land in L1's memory; reads fall through to the host's cache (kernels...).
  mount -t overlay -o lowerdir="$R$VC_CACHE",upperdir=/upper/cache/u,workdir=/upper/cache/w overlay "$R$VC_CACHE" || die "cannot overlay the cache dir $VC_CACHE"
fi
# Hold the kernel's static keys that KVM and CPU quotas flip, for L1's lifetime. With no VM left,
# KVM_CREATE_VM and the last VM's end each patch kernel text (the preempt-notifier key in
# __schedule; a vCPU's LAPIC and a cgroup's CPU quota flip others); under multi-threaded TCG a
# vCPU then kept hitting a stale int3 in __schedule forever (L1 silent; the runs with and without
# the keys held are in docs/nested-harness.md).
mkdir -p $R/sys/fs/cgroup/vc-l1-keys && echo "1000000 100000" > $R/sys/fs/cgroup/vc-l1-keys/cpu.max || say "no CPU quota key holder"
chroot $R python3 -c 'import fcntl,os,time
k=os.open("/dev/kvm",os.O_RDWR)
vm=fcntl.ioctl(k,0xAE01,0);fcntl.ioctl(vm,0xAE60,0);cpu=fcntl.ioctl(vm,0xAE41,0)
vm2=fcntl.ioctl(k,0xAE01,0);cpu2=fcntl.ioctl(vm2,0xAE41,0)
print("vc-l1: static keys held (2 VMs)",flush=True);time.sleep(1e9)' < /dev/null > /dev/console 2>&1 &
mkdir -p $R/run/vc-l1
cp /run.sh $R/run/vc-l1/run.sh
say "running the command"
printf '\\036${L1_MARK_PREFIX}START %s\\036' "$VC_NONCE" > "$OUT"
chroot $R /bin/sh /run/vc-l1/run.sh < /dev/null > "$OUT" 2>&1
code=$?
sync
printf '\\036${L1_MARK_PREFIX}EXIT %s %d\\036' "$VC_NONCE" $code > "$OUT"
poweroff -f
sleep 30
`;
}

export interface L1InitrdInputs {
  release: string;
  modules: ReadonlyArray<{ relPath: string; data: Uint8Array }>;
  busybox: { data: Uint8Array; applets: readonly string[] };
}

/** The L1 initrd's entries, without touching the filesystem: the guest layout with our /init. */
export function planL1Initrd(inputs: L1InitrdInputs): InitrdSpec {
  return planInitrd({ agent: Buffer.from(l1InitScript()), release: inputs.release, modules: inputs.modules, busybox: inputs.busybox, hostname: 'vc-l1' });
}

export interface BuiltL1Initrd { path: string; digest: string; cached: boolean; modules: string[] }

/** Builds (or finds in the cache) the L1 initrd for a kernel's modules directory. */
export async function buildL1Initrd(kernel: { modulesDir: string; release: string }, opts: { cacheDir?: string; onProgress?: (m: string) => void } = {}): Promise<BuiltL1Initrd> {
  const plan = await resolveModules(kernel.modulesDir, L1_MODULES, { release: kernel.release });
  const busybox = await findBusybox({ cacheDir: opts.cacheDir, onProgress: opts.onProgress });
  const spec = planL1Initrd({
    release: kernel.release,
    modules: await Promise.all(plan.load.map(async (m) => ({ relPath: m.relPath, data: await readFile(m.path) }))),
    busybox: { data: await readFile(busybox.path), applets: busybox.applets },
  });
  const digest = initrdDigest(spec);
  const path = join(opts.cacheDir ?? cacheDir(), 'initrd', `${digest}.cpio`);
  if (await isFile(path)) return { path, digest, cached: true, modules: spec.modules };
  const chunks = cpioChunks(spec.entries);
  await removeStaleTemps(dirname(path));
  await writeFileAtomic(path, chunks, { mode: 0o644 });
  opts.onProgress?.(`l1 initrd: wrote ${path} (${chunks.reduce((n, c) => n + c.length, 0)} bytes, ${spec.modules.length} modules)`);
  return { path, digest, cached: false, modules: spec.modules };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
