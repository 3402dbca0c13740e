// vc-test: nested-extended
// The crash-only lifecycle tests of test/integration on the built-in VMM, inside the nested-KVM
// harness: calls killed where the hypervisor acts on a running pod (VC_TEST_CRASH_SUBSET in the
// integration file; test/nested/kvm-crash-lifecycle.test.ts has the start and the VMM kills).
process.env.VC_TEST_HYPERVISOR = 'kvm';
process.env.VC_TEST_NETWORK = 'none'; // pod networks on this VMM: kvm-network.test.ts (helpers/hypervisor.ts testNetwork)
process.env.VC_TEST_CRASH_SUBSET = 'l1-running';
process.env.VC_TEST_VERBOSE ??= '1'; // a line per killed call: in L1 a run is slow, and a cut-short one shows how far it got
await import('../integration/crash-lifecycle.test.js');
