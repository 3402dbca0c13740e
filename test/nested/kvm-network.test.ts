// The network tests of test/integration on the built-in VMM: virtio-net over a tap in the pod's
// namespace, opened by vc-vmm running inside it.
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/network.test.js');
