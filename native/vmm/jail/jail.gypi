{
  # The jail vc-vmm enters before the guest runs (jail.h), and the jail-probe subcommand. Only vc-vmm links these.
  "variables": {
    "vmm_jail_sources": [
      "native/vmm/jail/jail.cc",
      "native/vmm/jail/jail_options.cc",
      "native/vmm/jail/jail_process.cc",
      "native/vmm/jail/jail_probe.cc"
    ]
  }
}
