#!/usr/bin/env bash
# Everything a fresh Debian (bookworm) machine needs before virtcontainers runs: host packages,
# npm dependencies (which build the addon and the guest agent), and the guest kernel in the cache
# (plus Debian's generic kernel, which the nested-KVM test harness boots as its L1 VM).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# qemu-system-x86: the QEMU hypervisor; busybox-static: the guest's shell and tools and the default
# image; erofs-utils: mkfs.erofs turns images into read-only disks; skopeo, umoci: the image tests
# build real OCI layouts and archives with them;
# acpica-tools: iasl checks the VMM's ACPI tables; kmod: modinfo, an independent check in the module tests; g++/make/python3: node-gyp builds
# the addon and the static agent; clang-14 + libclang-rt-14-dev: libFuzzer and the sanitizers for
# scripts/fuzz-vmm.sh (the VMM's virtqueue and vsock fuzzers); xz-utils: the nested-KVM harness
# unpacks the L1 kernel's xz payload once, so L1 skips decompressing it under emulation;
# debootstrap: the user-install test builds a Debian minbase root to install the package into;
# containernetworking-plugins: the CNI plugins (/usr/lib/cni: bridge, host-local, loopback, …) that
# bridge-mode pods run (src/network/cni.ts); iproute2 (ip, tc) and util-linux (nsenter, unshare,
# umount): pod network namespaces, taps and tc redirects (src/network); iptables: the shim's loopback
# forwarder redirects 127.0.0.1 in a CRI sandbox's netns into the VM (src/api/netns-loopback-forward.ts;
# containernetworking-plugins depends on it too, but the shim uses it itself).
# golang-github-containerd-containerd-dev: for the tests only — containerd's own .proto files (and,
# through its dependencies, ttrpc's Go types, gogo's google/protobuf and googleapis' google/rpc
# files) under /usr/share/gocode/src, against which test/unit/shim/proto/wire-compat.test.ts checks
# that our proto/ encodes and decodes as containerd does; the shim never reads them.
# containerd (with ctr) and runc: the shim tests and the containerd benchmark run the real
# containerd (test/helpers/containerd.ts starts a private one); runc is containerd's default runtime
# (its shim, containerd-shim-runc-v2, comes with containerd) and the control our shim is compared with.
packages=(qemu-system-x86 busybox-static cpio kmod erofs-utils skopeo umoci acpica-tools g++ make python3 clang-14 libclang-rt-14-dev xz-utils debootstrap containernetworking-plugins iproute2 util-linux iptables golang-github-containerd-containerd-dev containerd runc)
# podman (4.3.1 in bookworm) and conmon: the OCI runtime CLI tests run the real podman, as root,
# from a private configuration (test/helpers/podman.ts); netavark: the network backend the rig
# configures (podman looks for it in /usr/lib/podman). These come without their Recommends:
# buildah, fuse-overlayfs, slirp4netns, uidmap and catatonit serve rootless use, builds and --init,
# and dbus-user-session would bring systemd in; the rig needs none of them. (golang-github-containers-common,
# podman's configuration defaults, comes as a dependency; skopeo needs it too.)
# docker.io (dockerd and the docker client, 20.10): for the tests only — test/helpers/docker.ts runs
# a private dockerd on a private containerd, under which bin/virtc-runtime is tested (`dockerd
# --add-runtime`). Its Recommends are not needed (needrestart would restart the host's services);
# apparmor is, where the kernel enables AppArmor: dockerd loads its docker-default profile then.
lean_packages=(podman conmon netavark docker.io)
if grep -qs Y /sys/module/apparmor/parameters/enabled; then lean_packages+=(apparmor); fi
missing=()
missing_lean=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
for pkg in "${lean_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing_lean+=("$pkg")
done
# apt lists are needed both to install and to `apt-get download` the guest kernel.
if [ $((${#missing[@]} + ${#missing_lean[@]})) -gt 0 ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
  echo "setup: apt-get update"
  "${sudo_cmd[@]}" apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ${#missing_lean[@]} -gt 0 ]; then
  echo "setup: installing ${missing_lean[*]} (without recommends)"
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing_lean[@]}" >/dev/null
fi
# docker.io starts the system's dockerd (docker.socket and docker.service under systemd, else
# /etc/init.d/docker). The tests never use it — they run their own — and it would add a docker0
# bridge and iptables rules (FORWARD policy DROP) to the host: stopped and disabled when we installed
# it (`systemctl enable --now docker.socket docker.service` brings it back).
if [[ " ${missing_lean[*]} " == *" docker.io "* ]]; then
  if [ -d /run/systemd/system ]; then
    echo "setup: docker.io's system service stopped and disabled (the tests run a private dockerd)"
    "${sudo_cmd[@]}" systemctl disable --now docker.socket docker.service
  elif [ -x /etc/init.d/docker ] && /etc/init.d/docker status >/dev/null 2>&1; then
    echo "setup: docker.io's init script stopped and disabled (the tests run a private dockerd)"
    "${sudo_cmd[@]}" /etc/init.d/docker stop
    "${sudo_cmd[@]}" update-rc.d docker disable
  fi
fi

echo "setup: npm ci (builds the addon, the guest agent and the TypeScript)"
npm ci --no-audit --no-fund --loglevel=error

# $1: cloud (the guest kernel) or generic (the nested-KVM harness's L1 kernel).
fetch_kernel() {
  node --input-type=module -e "
    const { resolveKernel } = await import('./dist/src/guest/kernel.js');
    const k = await resolveKernel({ flavor: '$1', onProgress: (m) => console.log('setup:', m) });
    console.log('setup: kernel', k.release, k.kernelPath);
  "
}
# Stale apt lists name a kernel version the mirror no longer has: refresh them once and retry.
for flavor in cloud generic; do
  echo "setup: guest kernel ($flavor)"
  if ! fetch_kernel "$flavor"; then
    echo "setup: kernel fetch failed; apt-get update and retry"
    "${sudo_cmd[@]}" apt-get update -qq
    fetch_kernel "$flavor"
  fi
done
