// The crash-only lifecycle tests of test/integration (virtc killed at every step, the VMM killed
// mid-boot), on the built-in VMM: run inside the nested-KVM harness.
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/crash-lifecycle.test.js');
