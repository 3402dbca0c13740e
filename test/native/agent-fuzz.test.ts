// vc-test: long
// The guest agent's fuzzers (native/agent/fuzz: the frame decoder, the connection layer with its
// virtio-serial sessions, the JSON parser, the requests' argument checks, a container's
// /etc/passwd and /etc/group) build with clang, ASan and UBSan and run for a short, bounded time
// over their committed seeds without a crash or a broken invariant (scripts/fuzz-agent.sh; the first
// build compiles the agent's sources with the sanitizers, about a minute on 2 cores).
import { test } from 'uvu';
import { fuzzTests } from '../helpers/fuzz-run.js';

fuzzTests({
  script: 'scripts/fuzz-agent.sh',
  dir: 'native/agent/fuzz',
  expected: ['channel_fuzzer', 'frame_fuzzer', 'json_fuzzer', 'request_fuzzer', 'users_fuzzer'],
  covers: 'the frames, connections, JSON, request arguments and users',
});

test.run();
