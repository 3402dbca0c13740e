// Who can reach a pod (test/integration/permissions.test.ts) on the built-in VMM: vc-vmm's control
// and vsock sockets, console and log, as a real unprivileged user of L1.
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/permissions.test.js');
