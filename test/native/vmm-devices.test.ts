// The VMM's device models (serial, i8042, virtqueues, virtio-mmio, blk, rng, vsock with its
// Unix-socket backend), unit-tested over plain memory in C++: every `ok NAME` / `FAIL NAME: …`
// line of `vmm-unit-tests dev_` becomes one uvu test here.
import { test } from 'uvu';
import { registerCppTests } from '../helpers/vmm-unit.js';

registerCppTests('dev_');

test.run();
