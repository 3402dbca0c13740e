{
  # The KVM fd owners (system, VM, vCPU, CPUID, MSRs, guest RAM) and the bus a vCPU exit goes to.
  "variables": {
    "vmm_core_sources": [
      "native/vmm/bus.cc",
      "native/vmm/kvm/kvm.cc",
      "native/vmm/kvm/kvm_state.cc",
      "native/vmm/kvm/guest_ram.cc",
      "native/vmm/kvm/cpuid.cc",
      "native/vmm/kvm/msrs.cc",
      "native/vmm/kvm/vcpu.cc",
      "native/vmm/kvm/vcpu_snapshot.cc"
    ]
  }
}
