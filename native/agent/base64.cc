#include "base64.h"

#include <cstdint>

namespace {

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

bool base64_decode(const std::string& in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  out->clear();
  out->reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    bool last = i + 4 == in.size();
    int pad = 0;
    if (last && in[i + 3] == '=') pad = in[i + 2] == '=' ? 2 : 1;
    uint32_t group = 0;
    for (int k = 0; k < 4; k++) {
      int v = k >= 4 - pad ? 0 : value_of(in[i + k]);
      if (v < 0) return false;
      group = group << 6 | static_cast<uint32_t>(v);
    }
    // Canonical only: the bits a padded group drops must be zero.
    if ((pad == 1 && (group & 0xff)) || (pad == 2 && (group & 0xffff))) return false;
    out->push_back(static_cast<char>(group >> 16));
    if (pad < 2) out->push_back(static_cast<char>(group >> 8 & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(group & 0xff));
  }
  return true;
}

std::string base64_encode(std::string_view in) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    size_t left = in.size() - i;
    uint32_t group = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (left > 1) group |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (left > 2) group |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 2]));
    out.push_back(kAlphabet[group >> 18 & 63]);
    out.push_back(kAlphabet[group >> 12 & 63]);
    out.push_back(left > 1 ? kAlphabet[group >> 6 & 63] : '=');
    out.push_back(left > 2 ? kAlphabet[group & 63] : '=');
  }
  return out;
}
