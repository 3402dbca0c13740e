// Standard base64 (RFC 4648 §4, with padding), for file data inside JSON requests (put_file).
#pragma once

#include <string>

// Decodes `in` into *out; false if it is not canonical padded base64 (length not a multiple of 4,
// a character outside the alphabet, misplaced padding, non-zero bits after the last byte).
bool base64_decode(const std::string& in, std::string* out);
