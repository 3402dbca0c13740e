// A small AML (ACPI Machine Language) byte emitter: just what the DSDT needs (ACPI 6.x §20.2,
// resource descriptors §6.4). Every function returns the encoded bytes of one term; terms compose
// by nesting. Names are 1–4 characters of A–Z, 0–9, _ (padded with '_'); a path may start with
// '\' and separate segments with '.'. NameStringValid() tells whether a path is well-formed; the
// DSDT builder only uses fixed names of that form (covered by the unit tests).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vmm::x86::aml {

using Bytes = std::vector<uint8_t>;

// PkgLength for a package whose contents after the PkgLength field are `payload` bytes (the
// encoded length counts its own 1–4 bytes). Lengths of 2^28 or more cannot be encoded: empty.
Bytes PkgLength(uint64_t payload);

bool NameStringValid(const std::string& path);
Bytes NameString(const std::string& path);

// Data objects.
Bytes Integer(uint64_t value);  // ZeroOp / OneOp / Byte- / Word- / DWord- / QWordPrefix
Bytes String(const std::string& text);
Bytes EisaId(const char* id);   // "PNP0501" -> its compressed 32-bit EISA id as an Integer
Bytes Package(const std::vector<Bytes>& elements);
Bytes Buffer(const Bytes& data);

// Named objects and scopes.
Bytes Name(const std::string& name, const Bytes& value);
Bytes Scope(const std::string& path, const std::vector<Bytes>& terms);
Bytes Device(const std::string& name, const std::vector<Bytes>& terms);

// Resource descriptors, and the Buffer that holds them with the end tag.
Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);  // 16-bit decode
Bytes IrqNoFlags(uint8_t irq);                                           // ISA IRQ 0–15
Bytes Memory32Fixed(bool writable, uint32_t base, uint32_t length);
Bytes Interrupt(bool consumer, bool edge, bool active_low, bool shared, uint32_t gsi);  // extended
Bytes ResourceTemplate(const std::vector<Bytes>& descriptors);

Bytes Concat(const std::vector<Bytes>& parts);

}  // namespace vmm::x86::aml
