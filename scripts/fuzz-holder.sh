#!/usr/bin/env bash
# Builds vc-holder's libFuzzer target (native/holder/fuzz/frame_fuzzer.cc: the frame decoder that
# reads the daemon's bytes) with clang, ASan and UBSan into build/fuzz/, then runs it for a bounded
# time over its committed seeds (native/holder/fuzz/corpus/frame_fuzzer/). What a run discovers goes
# to build/fuzz/corpus-frame_fuzzer/ (kept, never committed); a crash leaves
# build/fuzz/crash-frame_fuzzer-* and fails. Same layout and output as scripts/fuzz-vmm.sh.
# Usage: scripts/fuzz-holder.sh [SECONDS, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
out=build/fuzz
name=frame_fuzzer
cxx="${FUZZ_CXX:-}"
if [ -z "$cxx" ]; then cxx="$(command -v clang++-14 || command -v clang++ || true)"; fi
if [ -z "$cxx" ]; then
  echo "fuzz-holder: clang++ not found; install clang-14 and libclang-rt-14-dev (scripts/setup.sh does)" >&2
  exit 2
fi
mkdir -p "$out" "$out/corpus-$name"
bin="$out/$name"
if [ ! -x "$bin" ] || [ -n "$(find native/holder native/common -newer "$bin" \( -name '*.cc' -o -name '*.h' \) -print -quit)" ]; then
  echo "fuzz-holder: building $name"
  if ! "$cxx" -std=c++17 -Wall -Wextra -g -O1 -fno-exceptions -fsanitize=fuzzer,address,undefined \
      -fno-sanitize-recover=all -Inative "native/holder/fuzz/$name.cc" native/holder/frame.cc -o "$bin"; then
    echo "== $name: BUILD FAILED"
    exit 1
  fi
fi

log="$out/$name.log"
echo "== $name (${seconds}s)"
set +e
"$bin" "$out/corpus-$name" "native/holder/fuzz/corpus/$name" -max_total_time="$seconds" -max_len=4096 \
  -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$out/crash-$name-" -print_final_stats=1 >"$log" 2>&1
rc=$?
set -e
grep -E '^(INFO: Seed|#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|.*runtime error|artifact_prefix|Test unit written)' "$log" || true
if [ "$rc" -ne 0 ]; then
  echo "== $name: FAILED (exit $rc; full log in $log)"
  exit 1
fi
echo "== $name: ok"
