{
  # The KVM core, the run loop, the bus, and the vc-vmm executable's main and control socket.
  "variables": {
    "vmm_core_sources": [],
    "vmm_main_sources": ["native/vmm/kvm/run_main.cc"]
  }
}
