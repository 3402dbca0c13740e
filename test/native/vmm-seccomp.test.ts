// vc-vmm's per-thread seccomp allow-lists (native/vmm/seccomp/filters.cc) without KVM: every
// `ok NAME` / `FAIL NAME: …` line of `vmm-unit-tests seccomp_` becomes one uvu test here (each
// filter installed in a forked child that makes allowed calls, then a forbidden one).
import { test } from 'uvu';
import { registerCppTests } from '../helpers/vmm-unit.js';

registerCppTests('seccomp_');

test.run();
