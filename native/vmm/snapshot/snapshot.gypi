{
  # The snapshot file format (docs/snapshots.md): pure functions over byte buffers, no KVM. Linked
  # into vc-vmm and the unit tests; the snapshot fuzzer builds them itself (scripts/fuzz-vmm.sh).
  # The device sections' codecs (device_state.cc) are in devices.gypi: the device models use them.
  "variables": {
    "vmm_snapshot_sources": [
      "native/vmm/snapshot/crc32c.cc",
      "native/vmm/snapshot/format.cc",
      "native/vmm/snapshot/state_file.cc",
      "native/vmm/snapshot/sections.cc",
      "native/vmm/snapshot/memory_file.cc",
      "native/vmm/snapshot/vcpu_state.cc",
      "native/vmm/snapshot/machine_state.cc",
      "native/vmm/snapshot/snapshot.cc"
    ]
  }
}
