{
  # vc-vmm's command line: main and its subcommands (run, caps, dump-acpi). Only vc-vmm links these.
  "variables": {
    "vmm_cmd_sources": [
      "native/vmm/cmd/main.cc",
      "native/vmm/cmd/run.cc",
      "native/vmm/cmd/caps.cc",
      "native/vmm/cmd/dump_acpi.cc"
    ]
  }
}
