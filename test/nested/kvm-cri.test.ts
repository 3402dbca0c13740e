// The CRI tests on the built-in VMM, in L1 (real KVM): containerd with its CRI plugin, the CNI
// plugins and our shim run in L1 as on the host. A pod boot takes ~30 s there, so cri.test.ts runs
// its VMM-dependent core here (VC_NESTED_L1): a sandbox VM on the CNI netns, a container in it,
// ExecSync and a streaming Exec over the agent's vsock, stop/remove leaving nothing; the rest is
// hypervisor-independent and runs on QEMU in L0.
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/cri.test.js');
