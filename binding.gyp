{
  "includes": [
    "native/common/common.gypi",
    "native/vmm/arch/arch.gypi",
    "native/vmm/devices/devices.gypi",
    "native/vmm/kvm/kvm.gypi",
    "native/vmm/vm/vm.gypi",
    "native/vmm/cmd/cmd.gypi",
    "native/vmm/jail/jail.gypi",
    "native/vmm/snapshot/snapshot.gypi"
  ],
  "targets": [
    {
      "target_name": "vc_addon",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/kvm_probe.cc",
        "native/addon/host_ops.cc",
        "native/addon/vm_handle.cc",
        "native/addon/cgroup_ops.cc",
        "native/addon/netns_ops.cc",
        "native/addon/fd_passing.cc",
        "native/addon/pod_net_ops.cc",
        "native/addon/glibc_compat.cc",
        "native/host/cgroup.cc",
        "native/host/netlink.cc",
        "native/host/pod_net.cc",
        "<@(common_sources)",
        "<@(vmm_arch_sources)",
        "<@(vmm_device_sources)",
        "<@(vmm_core_sources)",
        "<@(vmm_vm_sources)",
        "<@(vmm_snapshot_sources)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "native/vmm"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-fno-exceptions"
      ],
      "cflags_cc!": [
        "-fno-rtti"
      ],
      "ldflags": [
        "-static-libstdc++"
      ]
    },
    {
      "target_name": "vc-agent",
      "type": "executable",
      "sources": [
        "native/agent/main.cc",
        "native/agent/pid1.cc",
        "native/agent/event_loop.cc",
        "native/agent/channel.cc",
        "native/agent/serial_ports.cc",
        "native/agent/requests.cc",
        "native/agent/process_requests.cc",
        "native/agent/reply.cc",
        "native/agent/process.cc",
        "native/agent/spawn.cc",
        "native/agent/container.cc",
        "native/agent/container_requests.cc",
        "native/agent/container_spawn.cc",
        "native/agent/container_ops.cc",
        "native/agent/cgroup_stats.cc",
        "native/agent/binds.cc",
        "native/agent/put_file.cc",
        "native/agent/bind_read.cc",
        "native/agent/bind_ops.cc",
        "native/agent/base64.cc",
        "native/agent/confine.cc",
        "native/agent/confine_requests.cc",
        "native/agent/write_file.cc",
        "native/agent/oci_mounts.cc",
        "native/agent/mounts.cc",
        "native/agent/cgroup.cc",
        "native/agent/users.cc",
        "native/agent/blockdev.cc",
        "native/agent/protocol.cc",
        "native/agent/log.cc",
        "native/agent/netlink.cc",
        "native/agent/network.cc",
        "native/agent/forward.cc",
        "native/agent/restore.cc",
        "native/agent/restore_requests.cc",
        "<@(common_sources)"
      ],
      "include_dirs": [
        "native"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-O2",
        "-fno-exceptions"
      ],
      "ldflags": [
        "-static"
      ]
    },
    {
      # virtc-runtime's stand-in for a container's process on the host (native/holder): static, so
      # it runs wherever the engine runs it, and small, since one waits per container and exec.
      "target_name": "vc-holder",
      "type": "executable",
      "sources": [
        "native/holder/main.cc",
        "native/holder/args.cc",
        "native/holder/console.cc",
        "native/holder/frame.cc",
        "native/holder/relay.cc",
        "native/holder/signals.cc",
        "<@(common_sources)"
      ],
      "include_dirs": [
        "native"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-O2",
        "-fno-exceptions"
      ],
      "ldflags": [
        "-static"
      ]
    },
    {
      "target_name": "artifacts",
      "type": "none",
      "dependencies": [
        "vc-agent",
        "vc-vmm",
        "vc-holder"
      ],
      "copies": [
        {
          "destination": "<(module_root_dir)/build/artifacts",
          "files": [
            "<(PRODUCT_DIR)/vc-agent",
            "<(PRODUCT_DIR)/vc-vmm",
            "<(PRODUCT_DIR)/vc-holder"
          ]
        }
      ]
    },
    {
      # Compiles the seccomp lists (filters.cc) to BPF at build time; vc-vmm-seccomp-bpf runs it.
      "target_name": "vc-vmm-bpf-gen",
      "type": "executable",
      "sources": [
        "native/vmm/seccomp/bpf_gen.cc",
        "native/vmm/seccomp/filters.cc",
        "<@(common_sources)"
      ],
      "include_dirs": [
        "native",
        "native/vmm"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-O2",
        "-fno-exceptions"
      ],
      "libraries": [
        "-l:libseccomp.a"
      ]
    },
    {
      "target_name": "vc-vmm-seccomp-bpf",
      "type": "none",
      "dependencies": [
        "vc-vmm-bpf-gen"
      ],
      "actions": [
        {
          "action_name": "vc_vmm_seccomp_bpf",
          "inputs": [
            "<(PRODUCT_DIR)/vc-vmm-bpf-gen"
          ],
          "outputs": [
            "<(SHARED_INTERMEDIATE_DIR)/vmm/seccomp_bpf.generated.h"
          ],
          "action": [
            "<(PRODUCT_DIR)/vc-vmm-bpf-gen",
            "<(SHARED_INTERMEDIATE_DIR)/vmm/seccomp_bpf.generated.h"
          ]
        }
      ]
    },
    {
      "target_name": "vc-vmm",
      "type": "executable",
      "dependencies": [
        "vc-vmm-seccomp-bpf"
      ],
      "sources": [
        "native/host/cgroup.cc",
        "<@(common_sources)",
        "<@(vmm_arch_sources)",
        "<@(vmm_device_sources)",
        "<@(vmm_core_sources)",
        "<@(vmm_vm_sources)",
        "<@(vmm_snapshot_sources)",
        "<@(vmm_cmd_sources)",
        "<@(vmm_seccomp_sources)",
        "<@(vmm_jail_sources)"
      ],
      "include_dirs": [
        "native",
        "native/vmm",
        "<(SHARED_INTERMEDIATE_DIR)/vmm"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-Wall",
        "-Wextra",
        "-O2",
        "-fno-exceptions"
      ],
      "ldflags": [
        "-pthread",
        "-static"
      ],
      # libseccomp.a (Debian libseccomp-dev), linked in like everything else: vc-vmm is static.
      "libraries": [
        "-lseccomp"
      ]
    }
  ],
  # The test-only targets (the VMM's C++ unit tests, the KVM-floor benchmark, the freestanding test
  # guests) build only from a checkout: the npm package ships neither their sources nor them, so its
  # source fallback builds just what users run (the addon, vc-agent, vc-vmm, vc-holder).
  "variables": {
    "vc_dev_targets%": "<!(node -p \"require('fs').existsSync('native/vmm/tests/main.cc') ? 1 : 0\")"
  },
  "conditions": [
    [
      "vc_dev_targets==1",
      {
        "targets": [
          {
            "target_name": "vmm-unit-tests",
            "type": "executable",
            "sources": [
              "native/vmm/tests/main.cc",
              "native/vmm/tests/guest_memory_test.cc",
              "native/vmm/tests/dev_queue_test.cc",
              "native/vmm/tests/dev_mmio_test.cc",
              "native/vmm/tests/dev_serial_test.cc",
              "native/vmm/tests/dev_event_loop_test.cc",
              "native/vmm/tests/dev_blk_test.cc",
              "native/vmm/tests/dev_vsock_test.cc",
              "native/vmm/tests/dev_net_test.cc",
              "native/vmm/tests/arch_aml_test.cc",
              "native/vmm/tests/arch_acpi_test.cc",
              "native/vmm/tests/arch_boot_test.cc",
              "native/vmm/tests/arch_bzimage_test.cc",
              "native/vmm/tests/arch_pvh_test.cc",
              "native/vmm/tests/kvm_bus_test.cc",
              "native/vmm/tests/kvm_config_test.cc",
              "native/vmm/tests/kvm_cpuid_test.cc",
              "native/vmm/tests/kvm_vcpu_test.cc",
              "native/vmm/tests/seccomp_filters_test.cc",
              "native/vmm/tests/cmd_launch_request_test.cc",
              "native/vmm/cmd/launch_request.cc",
              "native/vmm/tests/snap_format_test.cc",
              "native/vmm/tests/snap_device_state_test.cc",
              "native/vmm/tests/snap_device_models_test.cc",
              "<@(common_sources)",
              "<@(vmm_arch_sources)",
              "<@(vmm_device_sources)",
              "<@(vmm_core_sources)",
              "<@(vmm_vm_sources)",
              "<@(vmm_seccomp_sources)",
              "<@(vmm_snapshot_sources)"
            ],
            "dependencies": [
              "vc-vmm-seccomp-bpf"
            ],
            "include_dirs": [
              "native",
              "native/vmm",
              "<(SHARED_INTERMEDIATE_DIR)/vmm"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-Wall",
              "-Wextra",
              "-O2",
              "-fno-exceptions"
            ],
            "libraries": [
              "-l:libseccomp.a"
            ]
          },
          {
            "target_name": "bench-kvm-floor",
            "type": "executable",
            "sources": [
              "bench/native/kvm_floor.cc"
            ],
            "cflags_cc": [
              "-std=c++17",
              "-Wall",
              "-Wextra",
              "-O2",
              "-fno-exceptions"
            ]
          },
          {
            "target_name": "testguests",
            "type": "none",
            "actions": [
              {
                "action_name": "build_testguests",
                "inputs": [
                  "native/testguest/build.sh",
                  "native/testguest/bzimage.ld",
                  "native/testguest/pvh.ld",
                  "native/testguest/entry.S",
                  "native/testguest/rt.h",
                  "native/testguest/rt.c",
                  "native/testguest/tests.h",
                  "native/testguest/main.c",
                  "native/testguest/boot.c",
                  "native/testguest/smp.c",
                  "native/testguest/perf.c",
                  "native/testguest/virtio.h",
                  "native/testguest/virtio.c",
                  "native/testguest/vsock.c",
                  "native/testguest/blk.c"
                ],
                "outputs": [
                  "<(PRODUCT_DIR)/testguest/vctest.bzImage",
                  "<(PRODUCT_DIR)/testguest/vctest.elf"
                ],
                "action": [
                  "sh",
                  "native/testguest/build.sh",
                  "<(PRODUCT_DIR)/testguest"
                ]
              }
            ]
          }
        ]
      }
    ]
  ]
}
