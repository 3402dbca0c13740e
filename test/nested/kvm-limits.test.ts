// The hypervisor limits tests of test/unit again where KVM runs stock guests (L1), so the kvm pod
// beyond the VMM's memory is refused by createPod itself, not skipped as on a PVM host.
await import('../unit/hypervisor/limits.test.js');
