#include "auth/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <climits>
#include <stdexcept>

namespace starling::auth {
namespace {

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes_of(std::string& s) {
  return reinterpret_cast<unsigned char*>(s.data());
}

std::string pbkdf2(const EVP_MD* md, std::string_view password, std::string_view salt,
                   uint32_t iterations, size_t length) {
  if (password.size() > INT_MAX || salt.size() > INT_MAX || iterations > INT_MAX ||
      length > INT_MAX) {
    throw std::runtime_error("PBKDF2 input too large");
  }
  std::string out(length, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes_of(salt),
                        static_cast<int>(salt.size()), static_cast<int>(iterations), md,
                        static_cast<int>(length), bytes_of(out)) != 1) {
    throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
  }
  return out;
}

}  // namespace

std::string sha256(std::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  SHA256(bytes_of(data), data.size(), bytes_of(out));
  return out;
}

std::string sha512(std::string_view data) {
  std::string out(SHA512_DIGEST_LENGTH, '\0');
  SHA512(bytes_of(data), data.size(), bytes_of(out));
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  if (key.size() > INT_MAX) throw std::runtime_error("HMAC key too large");
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes_of(data), data.size(),
           bytes_of(out), &length) == nullptr) {
    throw std::runtime_error("HMAC failed");
  }
  out.resize(length);
  return out;
}

std::string pbkdf2_sha256(std::string_view password, std::string_view salt, uint32_t iterations,
                          size_t length) {
  return pbkdf2(EVP_sha256(), password, salt, iterations, length);
}

std::string pbkdf2_sha512(std::string_view password, std::string_view salt, uint32_t iterations,
                          size_t length) {
  return pbkdf2(EVP_sha512(), password, salt, iterations, length);
}

std::string random_bytes(size_t count) {
  std::string out(count, '\0');
  if (count > INT_MAX || RAND_bytes(bytes_of(out), static_cast<int>(count)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string xor_bytes(std::string_view a, std::string_view b) {
  std::string out(a);
  for (size_t i = 0; i < out.size() && i < b.size(); ++i) {
    out[i] = static_cast<char>(out[i] ^ b[i]);
  }
  return out;
}

}  // namespace starling::auth
