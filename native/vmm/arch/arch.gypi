{
  # Pure functions over guest memory (no KVM): boot structures, ACPI, page tables.
  "variables": {
    "vmm_arch_sources": ["native/vmm/arch/x86/acpi_dump.cc"]
  }
}
