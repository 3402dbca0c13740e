{
  # One VM: its config, the Vm that builds and runs it, its system devices and the control socket.
  # Linked into the addon, vc-vmm and the unit tests (no command-line main here: that is cmd/).
  "variables": {
    "vmm_vm_sources": [
      "native/vmm/vm/system_devices.cc",
      "native/vmm/vm/config.cc",
      "native/vmm/vm/vm.cc",
      "native/vmm/vm/control.cc",
      "native/vmm/vm/config_json.cc",
      "native/vmm/vm/snapshot.cc",
      "native/vmm/vm/restore.cc",
      "native/vmm/vm/snapshot_files.cc",
      "native/vmm/vm/device_snapshot.cc"
    ]
  }
}
