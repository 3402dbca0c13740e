// AML emitter: encodings checked byte by byte against ACPI 6.x §20.2 and §6.4.
#include "arch/x86/aml.h"
#include "tests/check.h"

using vmm::x86::aml::Bytes;
namespace aml = vmm::x86::aml;

VMM_TEST(arch_aml_pkglength_boundaries) {
  CHECK(aml::PkgLength(0) == Bytes({0x01}));
  CHECK(aml::PkgLength(62) == Bytes({0x3f}));              // 63 in one byte
  CHECK(aml::PkgLength(63) == Bytes({0x41, 0x04}));        // 65 = 0x41: two bytes
  CHECK(aml::PkgLength(4093) == Bytes({0x4f, 0xff}));      // 4095, the largest two-byte length
  CHECK(aml::PkgLength(4094) == Bytes({0x81, 0x00, 0x01}));  // 4097 = 0x1001 in three bytes
  CHECK(aml::PkgLength((1u << 20) - 4) == Bytes({0x8f, 0xff, 0xff}));  // 2^20 - 1
  CHECK(aml::PkgLength((1u << 20) - 3) == Bytes({0xc1, 0x00, 0x00, 0x01}));  // 2^20 + 1
  CHECK(aml::PkgLength(1ull << 28).empty());
}

VMM_TEST(arch_aml_integer_uses_the_shortest_encoding) {
  CHECK(aml::Integer(0) == Bytes({0x00}));
  CHECK(aml::Integer(1) == Bytes({0x01}));
  CHECK(aml::Integer(2) == Bytes({0x0a, 0x02}));
  CHECK(aml::Integer(0xff) == Bytes({0x0a, 0xff}));
  CHECK(aml::Integer(0x100) == Bytes({0x0b, 0x00, 0x01}));
  CHECK(aml::Integer(0x10000) == Bytes({0x0c, 0x00, 0x00, 0x01, 0x00}));
  CHECK(aml::Integer(0x100000000ull) == Bytes({0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
}

VMM_TEST(arch_aml_names_and_paths) {
  CHECK(aml::NameString("\\_SB_") == Bytes({'\\', '_', 'S', 'B', '_'}));
  CHECK(aml::NameString("COM") == Bytes({'C', 'O', 'M', '_'}));
  CHECK(aml::NameString("_SB_.VR00") == Bytes({0x2e, '_', 'S', 'B', '_', 'V', 'R', '0', '0'}));
  CHECK(aml::NameString("\\A.B.C") == Bytes({'\\', 0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
  CHECK(aml::NameStringValid("\\_SB_.VR18"));
  CHECK(aml::NameStringValid("\\"));
  CHECK(!aml::NameStringValid(""));
  CHECK(!aml::NameStringValid("0ABC"));
  CHECK(!aml::NameStringValid("TOOLONG"));
  CHECK(!aml::NameStringValid("ab"));
  CHECK(!aml::NameStringValid("A..B"));
}

VMM_TEST(arch_aml_strings_eisa_ids_and_names) {
  CHECK(aml::String("LNRO0005") == Bytes({0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0}));
  CHECK(aml::EisaId("PNP0501") == Bytes({0x0c, 0x41, 0xd0, 0x05, 0x01}));
  CHECK(aml::EisaId("PNP0303") == Bytes({0x0c, 0x41, 0xd0, 0x03, 0x03}));
  CHECK(aml::Name("_UID", aml::Integer(3)) == Bytes({0x08, '_', 'U', 'I', 'D', 0x0a, 3}));
  CHECK(aml::Package({aml::Integer(5), aml::Integer(0)}) == Bytes({0x12, 0x05, 0x02, 0x0a, 0x05, 0x00}));
}

VMM_TEST(arch_aml_resource_descriptors) {
  CHECK(aml::Memory32Fixed(true, 0xd0001000, 0x1000) ==
        Bytes({0x86, 0x09, 0x00, 0x01, 0x00, 0x10, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00}));
  CHECK(aml::Interrupt(true, true, false, false, 6) == Bytes({0x89, 0x06, 0x00, 0x03, 0x01, 6, 0, 0, 0}));
  CHECK(aml::Interrupt(false, false, true, true, 0x20) == Bytes({0x89, 0x06, 0x00, 0x0c, 0x01, 0x20, 0, 0, 0}));
  CHECK(aml::Io(0x3f8, 0x3f8, 1, 8) == Bytes({0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08}));
  CHECK(aml::IrqNoFlags(4) == Bytes({0x22, 0x10, 0x00}));
  // Buffer { BufferSize 5, IRQ descriptor, end tag }.
  CHECK(aml::ResourceTemplate({aml::IrqNoFlags(1)}) == Bytes({0x11, 0x08, 0x0a, 0x05, 0x22, 0x02, 0x00, 0x79, 0x00}));
}

VMM_TEST(arch_aml_device_inside_scope) {
  const Bytes dev = aml::Device("VR00", {aml::Name("_UID", aml::Integer(0))});
  CHECK(dev == Bytes({0x5b, 0x82, 0x0b, 'V', 'R', '0', '0', 0x08, '_', 'U', 'I', 'D', 0x00}));
  const Bytes scope = aml::Scope("\\_SB_", {dev});
  CHECK_EQ(scope.size(), size_t(2 + 5 + dev.size()));
  CHECK_EQ(scope[0], 0x10);
  CHECK_EQ(scope[1], uint8_t(1 + 5 + dev.size()));
  // A device bigger than 63 bytes gets a two-byte PkgLength that still counts itself.
  std::vector<Bytes> names;
  for (int i = 0; i < 10; i++) names.push_back(aml::Name("_UID", aml::Integer(0x1000)));
  const Bytes big = aml::Device("BIG_", names);
  const size_t total = big.size() - 2;  // everything after the ExtOp prefix and DeviceOp
  CHECK_EQ(size_t(big[2] & 0x0f) | (size_t(big[3]) << 4), total);
  CHECK_EQ(big[2] >> 6, 1);
}
