// The container tests of test/integration, on the built-in VMM (images reach the running VM
// through virtio-blk slots instead of QEMU's hot-plugged SCSI disks).
process.env.VC_TEST_HYPERVISOR = 'kvm';
process.env.VC_TEST_NETWORK = 'none'; // pod networks on this VMM: kvm-network.test.ts (helpers/hypervisor.ts testNetwork)
await import('../integration/containers.test.js');
