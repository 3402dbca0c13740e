// vc-test: long
// The VMM's fuzzers (virtqueue chain walker; vsock packets and connection state machine; virtio-net
// rx/tx paths with a scripted backend, rate limiter and resets; the snapshot state file reader and
// section decoders) build with clang, ASan and UBSan and
// run for a short, bounded time over their committed corpus without a crash (scripts/fuzz-vmm.sh).
import { test } from 'uvu';
import { fuzzTests } from '../helpers/fuzz-run.js';

fuzzTests({
  script: 'scripts/fuzz-vmm.sh',
  dir: 'native/vmm/fuzz',
  expected: ['virtqueue_fuzzer', 'vsock_fuzzer', 'net_fuzzer', 'snapshot_fuzzer'],
  covers: 'the virtqueue, vsock and net paths and the snapshot reader',
});

test.run();
