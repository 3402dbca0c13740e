// The pod lifecycle tests of test/integration, on the built-in VMM: run inside the nested-KVM
// harness, where /dev/kvm boots the Debian cloud kernel.
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/pod-lifecycle.test.js');
