#!/usr/bin/env bash
# Builds the guest agent's libFuzzer targets (native/agent/fuzz/*_fuzzer.cc: the frame decoder,
# the connection layer with its virtio-serial sessions, the JSON parser, the requests' argument
# checks and container_stats' cgroup file parser, a container's /etc/passwd and /etc/group) with clang, ASan and UBSan into build/fuzz/,
# then runs each for a bounded time over its committed seeds (native/agent/fuzz/corpus/<fuzzer>/).
# The agent's sources (all but main.cc) go into one sanitized archive, from which each fuzzer
# links only what it uses. What a run discovers goes to build/fuzz/corpus-<fuzzer>/ (kept, never
# committed); a crash leaves build/fuzz/crash-<fuzzer>-* and fails. Same layout and output as
# scripts/fuzz-vmm.sh.
# Usage: scripts/fuzz-agent.sh [SECONDS per fuzzer, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
out=build/fuzz
objs="$out/agent-obj"
lib="$out/libvc-agent-fuzz.a"
cxx="${FUZZ_CXX:-}"
if [ -z "$cxx" ]; then cxx="$(command -v clang++-14 || command -v clang++ || true)"; fi
if [ -z "$cxx" ]; then
  echo "fuzz-agent: clang++ not found; install clang-14 and libclang-rt-14-dev (scripts/setup.sh does)" >&2
  exit 2
fi
ar="$(command -v llvm-ar-14 || command -v llvm-ar || command -v ar)"
flags=(-std=c++17 -Wall -Wextra -g -O1 -fno-exceptions -fno-sanitize-recover=all -Inative)
mkdir -p "$out" "$objs"

# name, max input length
fuzzers=(
  "channel_fuzzer 8192"
  "frame_fuzzer 4096"
  "json_fuzzer 4096"
  "request_fuzzer 8192"
  "users_fuzzer 4096"
)

stale() {  # stale FILE [find options]: FILE is missing, or an agent source or header is newer
  local file="$1"; shift
  [ ! -e "$file" ] || [ -n "$(find native/agent native/common "$@" -newer "$file" \( -name '*.cc' -o -name '*.h' \) -print -quit)" ]
}

build_lib() {
  stale "$lib" -maxdepth 1 || return 0  # the harnesses (fuzz/) are not in it
  echo "fuzz-agent: building $lib"
  rm -f "$objs"/*.o "$lib"
  local sources
  sources="$(ls native/agent/*.cc native/common/*.cc | grep -v '^native/agent/main\.cc$')"
  # One compiler per core; any failure fails the build.
  # shellcheck disable=SC2016
  echo "$sources" | FUZZ_CXX_BIN="$cxx" FUZZ_OBJS="$objs" xargs -P "$(nproc)" -I{} sh -c \
    '"$FUZZ_CXX_BIN" "$@" -fsanitize=fuzzer-no-link,address,undefined -c "$0" -o "$FUZZ_OBJS/$(basename "$0" .cc).o"' \
    {} "${flags[@]}" || return 1
  "$ar" rcs "$lib" "$objs"/*.o
}

build() {
  local name="$1" bin="$out/$1"
  if ! stale "$bin" && [ ! "$lib" -nt "$bin" ]; then return 0; fi
  echo "fuzz-agent: building $name"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined "native/agent/fuzz/$name.cc" "$lib" -o "$bin"
}

if ! build_lib; then
  echo "== agent fuzzers: BUILD FAILED ($lib)"
  exit 1
fi
status=0
for spec in "${fuzzers[@]}"; do
  read -r name max_len <<<"$spec"
  if ! build "$name"; then
    echo "== $name: BUILD FAILED"
    status=1
    continue
  fi
  mkdir -p "$out/corpus-$name"
  log="$out/$name.log"
  echo "== $name (${seconds}s)"
  dict=()  # the formats' words, where a target has them (libFuzzer splices them into inputs)
  if [ -f "native/agent/fuzz/$name.dict" ]; then dict=(-dict="native/agent/fuzz/$name.dict"); fi
  set +e
  "$out/$name" "${dict[@]}" "$out/corpus-$name" "native/agent/fuzz/corpus/$name" -max_total_time="$seconds" \
    -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/crash-$name-" \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^(INFO: Seed|#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" || true
  if [ "$rc" -ne 0 ]; then
    echo "== $name: FAILED (exit $rc; full log in $log)"
    status=1
  else
    echo "== $name: ok"
  fi
done
exit "$status"
