// The snapshot file format (native/vmm/snapshot, docs/snapshots.md), unit-tested in C++ without
// KVM: every `ok NAME` / `FAIL NAME: …` line of `vmm-unit-tests snap_` becomes one uvu test here,
// and the `# ` line reports the checksum's speed and what reading a state file costs.
import { test } from 'uvu';
import { registerCppTests } from '../helpers/vmm-unit.js';

registerCppTests('snap_');

test.run();
