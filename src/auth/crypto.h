// Thin wrappers over OpenSSL's libcrypto for the hashes the password formats and SCRAM need.
// Byte strings travel as std::string; the functions throw std::runtime_error only when OpenSSL
// itself fails (out of memory, no entropy), never on their inputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace starling::auth {

std::string sha256(std::string_view data);
std::string sha512(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string pbkdf2_sha256(std::string_view password, std::string_view salt, uint32_t iterations,
                          size_t length);
std::string pbkdf2_sha512(std::string_view password, std::string_view salt, uint32_t iterations,
                          size_t length);

// Cryptographically strong random bytes (RAND_bytes).
std::string random_bytes(size_t count);

// Compares in time that depends only on the lengths, so a mismatch position leaks nothing.
bool constant_time_equal(std::string_view a, std::string_view b);

// a XOR b; both must have the same length.
std::string xor_bytes(std::string_view a, std::string_view b);

}  // namespace starling::auth
