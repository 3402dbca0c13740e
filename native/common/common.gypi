{
  # What several native parts share (the addon, vc-vmm, vc-agent, the VMM's unit tests). The other
  # common/ pieces (result.h, fd.h, read_file.h) are header-only.
  "variables": {
    "common_sources": [
      "native/common/json.cc"
    ]
  }
}
