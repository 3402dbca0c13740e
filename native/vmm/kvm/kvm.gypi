{
  # The KVM core, the run loop, the bus, and the vc-vmm executable's main and control socket.
  # vmm_core_sources also link into vmm-unit-tests (the kvm_* tests); vmm_main_sources only into
  # vc-vmm. The agent's JSON parser is shared rather than written twice.
  "variables": {
    "vmm_core_sources": [
      "native/vmm/bus.cc",
      "native/vmm/kvm/kvm.cc",
      "native/vmm/kvm/guest_ram.cc",
      "native/vmm/kvm/cpuid.cc",
      "native/vmm/kvm/msrs.cc",
      "native/vmm/kvm/vcpu.cc",
      "native/vmm/kvm/system_devices.cc",
      "native/vmm/kvm/config.cc",
      "native/vmm/kvm/vm.cc",
      "native/vmm/kvm/control.cc",
      "native/agent/json.cc"
    ],
    "vmm_main_sources": [
      "native/vmm/kvm/run_main.cc",
      "native/vmm/kvm/caps_main.cc"
    ]
  }
}
