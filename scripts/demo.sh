#!/usr/bin/env bash
# The main job on a fresh machine: set up, then run a command in a VM pod and tear it down again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
virtc() { node bin/virtc.js "$@"; }
id="demo-$$"
trap 'virtc pod stop --id "$id" >/dev/null 2>&1 || true; virtc pod delete --id "$id" >/dev/null 2>&1 || true' EXIT
virtc pod create --id "$id"
virtc pod start --id "$id"
virtc pod enter --id "$id" -- sh -c 'echo "hello from $(hostname), kernel $(uname -r), $(nproc) vCPU"; cat /proc/meminfo | head -1'
virtc pod stop --id "$id"
virtc pod delete --id "$id"
