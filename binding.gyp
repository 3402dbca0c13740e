{
  "includes": ["native/vmm/arch/arch.gypi", "native/vmm/devices/devices.gypi", "native/vmm/kvm/kvm.gypi"],
  "targets": [
    {
      "target_name": "vc_addon",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/kvm_probe.cc",
        "native/addon/host_ops.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"]
    },
    {
      "target_name": "vc-agent",
      "type": "executable",
      "sources": [
        "native/agent/main.cc",
        "native/agent/pid1.cc",
        "native/agent/event_loop.cc",
        "native/agent/channel.cc",
        "native/agent/requests.cc",
        "native/agent/process.cc",
        "native/agent/spawn.cc",
        "native/agent/container.cc",
        "native/agent/container_requests.cc",
        "native/agent/container_spawn.cc",
        "native/agent/mounts.cc",
        "native/agent/cgroup.cc",
        "native/agent/users.cc",
        "native/agent/blockdev.cc",
        "native/agent/protocol.cc",
        "native/agent/json.cc",
        "native/agent/log.cc"
      ],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2", "-fno-exceptions"],
      "ldflags": ["-static"]
    },
    {
      "target_name": "artifacts",
      "type": "none",
      "dependencies": ["vc-agent"],
      "copies": [{
        "destination": "<(module_root_dir)/build/artifacts",
        "files": ["<(PRODUCT_DIR)/vc-agent"]
      }]
    },
    {
      "target_name": "vmm-unit-tests",
      "type": "executable",
      "sources": [
        "native/vmm/tests/main.cc",
        "native/vmm/tests/guest_memory_test.cc",
        "native/vmm/tests/arch_aml_test.cc",
        "native/vmm/tests/arch_acpi_test.cc",
        "native/vmm/tests/arch_boot_test.cc",
        "native/vmm/tests/arch_bzimage_test.cc",
        "native/vmm/tests/arch_pvh_test.cc",
        "<@(vmm_arch_sources)",
        "<@(vmm_device_sources)"
      ],
      "include_dirs": ["native/vmm"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2", "-fno-exceptions"]
    },
    {
      "target_name": "vc-vmm",
      "type": "executable",
      "sources": [
        "native/vmm/main.cc",
        "<@(vmm_arch_sources)",
        "<@(vmm_device_sources)",
        "<@(vmm_core_sources)",
        "<@(vmm_main_sources)"
      ],
      "include_dirs": ["native/vmm"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-O2", "-fno-exceptions"],
      "ldflags": ["-pthread"]
    }
  ]
}
