{
  # vc-vmm's command line: main and its subcommands (run, launcher, caps, dump-acpi, monitor, snapshot verify), and the seccomp
  # filters its threads install (seccomp/). Only vc-vmm links these (with libseccomp, statically).
  "variables": {
    "vmm_cmd_sources": [
      "native/vmm/cmd/main.cc",
      "native/vmm/cmd/run.cc",
      "native/vmm/cmd/caps.cc",
      "native/vmm/cmd/dump_acpi.cc",
      "native/vmm/cmd/monitor.cc",
      "native/vmm/cmd/launcher.cc",
      "native/vmm/cmd/launch_request.cc",
      "native/vmm/cmd/snapshot_verify.cc"
    ],
    "vmm_seccomp_sources": [
      "native/vmm/seccomp/filters.cc",
      "native/vmm/seccomp/built_in.cc",
      "native/vmm/seccomp/test_hook.cc"
    ]
  }
}
