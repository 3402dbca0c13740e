// The pod lifecycle tests of test/integration, on the built-in VMM: run inside the nested-KVM
// harness, where /dev/kvm boots the Debian cloud kernel.
process.env.VC_TEST_HYPERVISOR = 'kvm';
process.env.VC_TEST_NETWORK = 'none'; // pod networks on this VMM: kvm-network.test.ts (helpers/hypervisor.ts testNetwork)
await import('../integration/pod-lifecycle.test.js');
