#!/usr/bin/env bash
# Builds the VMM's libFuzzer targets (native/vmm/fuzz/*_fuzzer.cc) with clang, ASan and UBSan into
# build/fuzz/, then runs each for a bounded time over its committed seed corpus
# (native/vmm/fuzz/corpus/<fuzzer>/). What a run discovers goes to build/fuzz/corpus-<fuzzer>/
# (kept between runs, never committed); a crash leaves build/fuzz/crash-<fuzzer>-* and fails.
# Usage: scripts/fuzz-vmm.sh [SECONDS per fuzzer, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
out=build/fuzz
cxx="${FUZZ_CXX:-}"
if [ -z "$cxx" ]; then cxx="$(command -v clang++-14 || command -v clang++ || true)"; fi
if [ -z "$cxx" ]; then
  echo "fuzz-vmm: clang++ not found; install clang-14 and libclang-rt-14-dev (scripts/setup.sh does)" >&2
  exit 2
fi
mkdir -p "$out"

vq_sources="native/vmm/devices/virtio/queue.cc native/vmm/devices/virtio/chain_io.cc native/vmm/snapshot/device_state.cc"
vsock_sources="$vq_sources native/vmm/devices/virtio/device.cc native/vmm/devices/virtio/mmio.cc
  native/vmm/devices/virtio/vsock.cc native/vmm/backends/vsock_unix.cc native/vmm/backends/vsock_unix_guest.cc native/vmm/devices/event_loop.cc
  native/vmm/devices/log.cc native/vmm/devices/interrupt.cc"

net_sources="$vq_sources native/vmm/devices/virtio/device.cc native/vmm/devices/virtio/mmio.cc
  native/vmm/devices/virtio/net.cc native/vmm/devices/event_loop.cc native/vmm/devices/log.cc
  native/vmm/devices/interrupt.cc"

snapshot_sources="native/vmm/snapshot/crc32c.cc native/vmm/snapshot/format.cc native/vmm/snapshot/state_file.cc
  native/vmm/snapshot/sections.cc native/vmm/snapshot/memory_file.cc native/vmm/snapshot/vcpu_state.cc native/vmm/snapshot/machine_state.cc
  native/vmm/snapshot/snapshot.cc $vq_sources native/vmm/devices/virtio/device.cc native/vmm/devices/virtio/mmio.cc
  native/vmm/devices/virtio/rng.cc native/vmm/devices/event_loop.cc native/vmm/devices/log.cc native/vmm/devices/interrupt.cc"

# name, max input length, sources
fuzzers=(
  "virtqueue_fuzzer 16384 $vq_sources"
  "vsock_fuzzer 4096 $vsock_sources"
  "net_fuzzer 4096 $net_sources"
  "snapshot_fuzzer 32768 $snapshot_sources"
)

flags=(-std=c++17 -Wall -Wextra -g -O1 -fno-exceptions -fno-sanitize-recover=all -Inative/vmm -Inative)
objs="$out/vmm-objs"
stamp="$out/vmm-objs.stamp"
obj_of() { echo "$objs/$(echo "$1" | tr / _).o"; }

# Every source the fuzzers share is compiled once, one compiler per core, into $objs (was: each
# fuzzer compiled all of its sources in one clang call, one after another — queue.cc four times).
build_objects() {
  if [ -e "$stamp" ] && [ -z "$(find native/vmm/devices native/vmm/backends native/vmm/snapshot native/vmm/guest_memory.h \
      -newer "$stamp" \( -name '*.cc' -o -name '*.h' \) -print -quit)" ]; then
    return 0
  fi
  echo "fuzz-vmm: compiling the fuzzers' sources with the sanitizers"
  rm -rf "$objs" "$stamp"
  mkdir -p "$objs"
  # shellcheck disable=SC2016,SC2086
  printf '%s\n' $vsock_sources $net_sources $snapshot_sources | sort -u |
    FUZZ_CXX_BIN="$cxx" FUZZ_OBJS="$objs" xargs -P "$(nproc)" -I{} sh -c \
      '"$FUZZ_CXX_BIN" "$@" -fsanitize=fuzzer-no-link,address,undefined -c "$0" -o "$FUZZ_OBJS/$(echo "$0" | tr / _).o"' \
      {} "${flags[@]}" || return 1
  touch "$stamp"
}

build() {
  local name="$1"; shift
  local bin="$out/$name"
  # Rebuild only when a source or header the fuzzers use is newer than the binary.
  if [ -x "$bin" ] && [ ! "$stamp" -nt "$bin" ] && [ -z "$(find native/vmm/devices native/vmm/backends native/vmm/snapshot native/vmm/fuzz native/vmm/guest_memory.h \
      -newer "$bin" \( -name '*.cc' -o -name '*.h' \) -print -quit)" ]; then
    return 0
  fi
  echo "fuzz-vmm: building $name"
  local objects=()
  for source in "$@"; do objects+=("$(obj_of "$source")"); done
  "$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined "native/vmm/fuzz/$name.cc" "${objects[@]}" -o "$bin"
}

if ! build_objects; then
  echo "== vmm fuzzers: BUILD FAILED ($objs)"
  exit 1
fi
status=0
for spec in "${fuzzers[@]}"; do
  read -r name max_len sources <<<"$(echo $spec)"
  # shellcheck disable=SC2086
  if ! build "$name" $sources; then
    echo "== $name: BUILD FAILED"
    status=1
    continue
  fi
  mkdir -p "$out/corpus-$name"
  log="$out/$name.log"
  echo "== $name (${seconds}s)"
  set +e
  "$out/$name" "$out/corpus-$name" "native/vmm/fuzz/corpus/$name" -max_total_time="$seconds" \
    -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/crash-$name-" \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's own summary lines (the device models' warnings about bad guest input are noise).
  grep -E '^(INFO: Seed|#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    echo "== $name: FAILED (exit $rc; full log in $log)"
    status=1
  else
    echo "== $name: ok"
  fi
done
exit "$status"
