// The port-forward tests of test/integration on the built-in VMM: the agent channel is hybrid
// vsock there, where every host connection is its own guest connection (no leased ports).
process.env.VC_TEST_HYPERVISOR = 'kvm';
await import('../integration/port-forward.test.js');
