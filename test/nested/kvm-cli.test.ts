// virtc across separate processes with --hypervisor kvm, inside the nested-KVM harness.
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/cli.test.js');
