{
  # Pure functions over guest memory (no KVM): boot structures, ACPI, page tables.
  "variables": {
    "vmm_arch_sources": [
      "native/vmm/arch/x86/acpi.cc",
      "native/vmm/arch/x86/aml.cc",
      "native/vmm/arch/x86/boot.cc",
      "native/vmm/arch/x86/boot_params.cc",
      "native/vmm/arch/x86/bzimage.cc",
      "native/vmm/arch/x86/gdt.cc",
      "native/vmm/arch/x86/page_tables.cc",
      "native/vmm/arch/x86/pvh.cc",
      "native/vmm/arch/x86/regs.cc"
    ]
  }
}
