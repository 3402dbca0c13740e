// Standard base64 (RFC 4648 §4, with padding), for file data inside JSON requests (put_file)
// and replies (get_file).
#pragma once

#include <string>
#include <string_view>

// Decodes `in` into *out; false if it is not canonical padded base64 (length not a multiple of 4,
// a character outside the alphabet, misplaced padding, non-zero bits after the last byte).
bool base64_decode(const std::string& in, std::string* out);

// Padded base64 of `in`.
std::string base64_encode(std::string_view in);
