{
  # Device models and virtio transport (no KVM), and their host backends; with the codecs of their
  # snapshot sections (snapshot/device_state.cc, pure), which their SaveState/LoadState use.
  "variables": {
    "vmm_device_sources": [
      "native/vmm/devices/interrupt.cc",
      "native/vmm/devices/log.cc",
      "native/vmm/devices/event_loop.cc",
      "native/vmm/devices/serial.cc",
      "native/vmm/devices/i8042.cc",
      "native/vmm/devices/virtio/queue.cc",
      "native/vmm/devices/virtio/device.cc",
      "native/vmm/devices/virtio/chain_io.cc",
      "native/vmm/devices/virtio/mmio.cc",
      "native/vmm/devices/virtio/blk.cc",
      "native/vmm/devices/virtio/rng.cc",
      "native/vmm/devices/virtio/vsock.cc",
      "native/vmm/devices/virtio/net.cc",
      "native/vmm/snapshot/device_state.cc",
      "native/vmm/backends/blk_file.cc",
      "native/vmm/backends/vsock_unix.cc",
      "native/vmm/backends/vsock_unix_guest.cc",
      "native/vmm/backends/tap.cc"
    ]
  }
}
