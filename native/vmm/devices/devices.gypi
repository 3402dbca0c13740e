{
  # Device models and virtio transport (no KVM), and their host backends.
  "variables": {
    "vmm_device_sources": []
  }
}
