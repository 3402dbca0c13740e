// vc-test: nested-extended
// The containerd shim tests on the built-in VMM, in L1 (real KVM): containerd, ctr and the shim
// run in L1 as they do on the host. L1 is TCG-emulated and slow (a pod boot takes ~30 s there),
// so shim.test.ts runs its VMM-dependent core here (VC_NESTED_L1): run --rm with output and exit
// code, exec/kill, and a VMM killed under a task; the rest is hypervisor-independent and runs on QEMU.
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/shim.test.js');
