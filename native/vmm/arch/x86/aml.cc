#include "arch/x86/aml.h"

namespace vmm::x86::aml {

namespace {

constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kNameOp = 0x08, kBytePrefix = 0x0a, kWordPrefix = 0x0b,
                  kDWordPrefix = 0x0c, kStringPrefix = 0x0d, kQWordPrefix = 0x0e, kScopeOp = 0x10,
                  kBufferOp = 0x11, kPackageOp = 0x12, kExtOpPrefix = 0x5b, kDeviceOp = 0x82,
                  kRootChar = '\\', kDualNamePrefix = 0x2e, kMultiNamePrefix = 0x2f;

void Append(Bytes* out, const Bytes& b) { out->insert(out->end(), b.begin(), b.end()); }

void PutLE(Bytes* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out->push_back(uint8_t(v >> (8 * i)));
}

std::vector<std::string> Segments(const std::string& path, bool* root) {
  std::vector<std::string> segs;
  size_t i = 0;
  *root = !path.empty() && path[0] == kRootChar;
  if (*root) i = 1;
  while (i <= path.size()) {
    size_t dot = path.find('.', i);
    if (dot == std::string::npos) dot = path.size();
    segs.push_back(path.substr(i, dot - i));
    i = dot + 1;
  }
  if (*root && path.size() == 1) segs.clear();  // "\" alone
  return segs;
}

bool SegValid(const std::string& s) {
  if (s.empty() || s.size() > 4) return false;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    const bool lead = (c >= 'A' && c <= 'Z') || c == '_';
    if (!(lead || (i > 0 && c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// Op [PkgLength] contents, for the package-shaped terms.
Bytes Pkg(std::initializer_list<uint8_t> op, const Bytes& contents) {
  Bytes out(op);
  Append(&out, PkgLength(contents.size()));
  Append(&out, contents);
  return out;
}

}  // namespace

Bytes PkgLength(uint64_t payload) {
  for (uint64_t n = 1; n <= 4; n++) {
    const uint64_t total = payload + n;
    if (n == 1 && total < 0x40) return {uint8_t(total)};
    if (n > 1 && total < (1ull << (4 + 8 * (n - 1)))) {
      Bytes out{uint8_t(((n - 1) << 6) | (total & 0xf))};
      PutLE(&out, total >> 4, int(n - 1));
      return out;
    }
  }
  return {};
}

bool NameStringValid(const std::string& path) {
  bool root = false;
  const auto segs = Segments(path, &root);
  if (segs.empty()) return root;
  for (const auto& s : segs)
    if (!SegValid(s)) return false;
  return segs.size() <= 255;
}

Bytes NameString(const std::string& path) {
  bool root = false;
  const auto segs = Segments(path, &root);
  Bytes out;
  if (root) out.push_back(kRootChar);
  if (segs.empty()) {
    out.push_back(0);  // NullName
    return out;
  }
  if (segs.size() == 2) out.push_back(kDualNamePrefix);
  if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(uint8_t(segs.size()));
  }
  for (std::string s : segs) {
    s.resize(4, '_');
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

Bytes Integer(uint64_t v) {
  if (v == 0) return {kZeroOp};
  if (v == 1) return {kOneOp};
  Bytes out;
  const int width = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffull ? 4 : 8;
  out.push_back(width == 1 ? kBytePrefix : width == 2 ? kWordPrefix : width == 4 ? kDWordPrefix : kQWordPrefix);
  PutLE(&out, v, width);
  return out;
}

Bytes String(const std::string& text) {
  Bytes out;
  out.reserve(text.size() + 2);
  out.push_back(kStringPrefix);
  for (char c : text) out.push_back(uint8_t(c));
  out.push_back(0);
  return out;
}

Bytes EisaId(const char* id) {
  // Three letters of 5 bits each (A = 1), then four hex digits; stored big-endian.
  auto hex = [](char c) { return uint32_t(c <= '9' ? c - '0' : c - 'A' + 10); };
  const uint32_t v = (uint32_t(id[0] - '@') << 26) | (uint32_t(id[1] - '@') << 21) | (uint32_t(id[2] - '@') << 16) |
                     (hex(id[3]) << 12) | (hex(id[4]) << 8) | (hex(id[5]) << 4) | hex(id[6]);
  return Integer(((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24));
}

Bytes Package(const std::vector<Bytes>& elements) {
  Bytes contents{uint8_t(elements.size())};
  for (const auto& e : elements) Append(&contents, e);
  return Pkg({kPackageOp}, contents);
}

Bytes Buffer(const Bytes& data) {
  Bytes contents = Integer(data.size());
  Append(&contents, data);
  return Pkg({kBufferOp}, contents);
}

Bytes Name(const std::string& name, const Bytes& value) {
  Bytes out{kNameOp};
  Append(&out, NameString(name));
  Append(&out, value);
  return out;
}

Bytes Scope(const std::string& path, const std::vector<Bytes>& terms) {
  Bytes contents = NameString(path);
  for (const auto& t : terms) Append(&contents, t);
  return Pkg({kScopeOp}, contents);
}

Bytes Device(const std::string& name, const std::vector<Bytes>& terms) {
  Bytes contents = NameString(name);
  for (const auto& t : terms) Append(&contents, t);
  return Pkg({kExtOpPrefix, kDeviceOp}, contents);
}

Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out{0x47, 0x01};  // small item: I/O port, 7 bytes; 16-bit decode
  PutLE(&out, min, 2);
  PutLE(&out, max, 2);
  out.push_back(alignment);
  out.push_back(length);
  return out;
}

Bytes IrqNoFlags(uint8_t irq) {
  Bytes out{0x22};  // small item: IRQ, 2 bytes (edge, active-high, exclusive)
  PutLE(&out, 1u << (irq & 15), 2);
  return out;
}

Bytes Memory32Fixed(bool writable, uint32_t base, uint32_t length) {
  Bytes out{0x86, 9, 0, uint8_t(writable ? 1 : 0)};  // large item 0x06, 9 bytes
  PutLE(&out, base, 4);
  PutLE(&out, length, 4);
  return out;
}

Bytes Interrupt(bool consumer, bool edge, bool active_low, bool shared, uint32_t gsi) {
  Bytes out{0x89, 6, 0};  // large item 0x09 (extended interrupt), 6 bytes for one interrupt
  out.push_back(uint8_t((consumer ? 1 : 0) | (edge ? 2 : 0) | (active_low ? 4 : 0) | (shared ? 8 : 0)));
  out.push_back(1);
  PutLE(&out, gsi, 4);
  return out;
}

Bytes ResourceTemplate(const std::vector<Bytes>& descriptors) {
  Bytes data;
  for (const auto& d : descriptors) Append(&data, d);
  data.push_back(0x79);  // end tag
  data.push_back(0);     // checksum 0: "treat as correct"
  return Buffer(data);
}

Bytes Concat(const std::vector<Bytes>& parts) {
  Bytes out;
  for (const auto& p : parts) Append(&out, p);
  return out;
}

}  // namespace vmm::x86::aml
