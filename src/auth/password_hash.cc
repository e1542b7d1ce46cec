#include "auth/password_hash.h"

#include <charconv>
#include <stdexcept>
#include <vector>

#include "auth/crypto.h"
#include "core/base64.h"
#include "core/text.h"

namespace starling::auth {
namespace {

constexpr size_t kSha512Bytes = 64;
constexpr size_t kSha256Bytes = 32;
constexpr size_t kMosquittoSaltBytes = 12;
constexpr size_t kScramSaltBytes = 16;
// Generous for any real salt, small enough that a hostile file cannot make hashing costly.
constexpr size_t kMaxSaltBytes = 256;

uint32_t parse_iterations(std::string_view text) {
  uint32_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0) {
    throw std::invalid_argument("bad iteration count '" + std::string(text) + "'");
  }
  if (value > kMaxHashIterations) {
    throw std::invalid_argument("iteration count " + std::string(text) + " above the maximum " +
                                std::to_string(kMaxHashIterations));
  }
  return value;
}

std::string decode_field(std::string_view text, std::string_view what, size_t exact_size) {
  auto bytes = core::base64_decode(text);
  if (!bytes) throw std::invalid_argument("bad base64 in " + std::string(what));
  if (exact_size != 0 && bytes->size() != exact_size) {
    throw std::invalid_argument(std::string(what) + " is " + std::to_string(bytes->size()) +
                                " bytes, expected " + std::to_string(exact_size));
  }
  return std::move(*bytes);
}

std::string decode_salt(std::string_view text) {
  std::string salt = decode_field(text, "salt", 0);
  if (salt.empty() || salt.size() > kMaxSaltBytes) {
    throw std::invalid_argument("salt must be 1 to " + std::to_string(kMaxSaltBytes) + " bytes");
  }
  return salt;
}

uint32_t effective_iterations(HashKind kind, uint32_t iterations) {
  if (iterations > kMaxHashIterations) {
    throw std::invalid_argument("iteration count above the maximum " +
                                std::to_string(kMaxHashIterations));
  }
  switch (kind) {
    case HashKind::Sha512:
      return 0;
    case HashKind::Pbkdf2Sha512:
      return iterations == 0 ? kDefaultPbkdf2Iterations : iterations;
    case HashKind::ScramSha256:
      return iterations == 0 ? kDefaultScramIterations : iterations;
  }
  return 0;
}

std::string sha512_hash(std::string_view password, std::string_view salt) {
  std::string input(password);
  input += salt;
  return sha512(input);
}

}  // namespace

ScramCredentials make_scram_credentials(std::string_view password, std::string salt,
                                        uint32_t iterations) {
  const std::string salted = pbkdf2_sha256(password, salt, iterations, kSha256Bytes);
  ScramCredentials c;
  c.stored_key = sha256(hmac_sha256(salted, "Client Key"));
  c.server_key = hmac_sha256(salted, "Server Key");
  c.salt = std::move(salt);
  c.iterations = iterations;
  return c;
}

PasswordHash PasswordHash::parse(std::string_view text) {
  const std::vector<std::string_view> f = core::split(text, '$');
  // A hash starts with '$', so the first field is always empty.
  if (f.size() < 2 || !f[0].empty()) throw std::invalid_argument("not a '$'-prefixed hash");
  PasswordHash h;
  if (f[1] == "6") {
    if (f.size() != 4) throw std::invalid_argument("$6$ hash needs $6$<salt>$<hash>");
    h.kind_ = HashKind::Sha512;
    h.salt_ = decode_salt(f[2]);
    h.hash_ = decode_field(f[3], "hash", kSha512Bytes);
  } else if (f[1] == "7") {
    if (f.size() != 5) {
      throw std::invalid_argument("$7$ hash needs $7$<iterations>$<salt>$<hash>");
    }
    h.kind_ = HashKind::Pbkdf2Sha512;
    h.iterations_ = parse_iterations(f[2]);
    h.salt_ = decode_salt(f[3]);
    h.hash_ = decode_field(f[4], "hash", kSha512Bytes);
  } else if (f[1] == "scram-sha-256") {
    if (f.size() != 6) {
      throw std::invalid_argument(
          "$scram-sha-256$ hash needs $scram-sha-256$<iterations>$<salt>$<StoredKey>$<ServerKey>");
    }
    h.kind_ = HashKind::ScramSha256;
    h.iterations_ = parse_iterations(f[2]);
    h.salt_ = decode_salt(f[3]);
    h.hash_ = decode_field(f[4], "StoredKey", kSha256Bytes);
    h.server_key_ = decode_field(f[5], "ServerKey", kSha256Bytes);
  } else {
    throw std::invalid_argument("unknown hash kind '$" + std::string(f[1]) + "$'");
  }
  return h;
}

PasswordHash PasswordHash::create(std::string_view password, HashKind kind, uint32_t iterations) {
  const size_t salt_size = kind == HashKind::ScramSha256 ? kScramSaltBytes : kMosquittoSaltBytes;
  return create_with_salt(password, kind, iterations, random_bytes(salt_size));
}

PasswordHash PasswordHash::create_with_salt(std::string_view password, HashKind kind,
                                            uint32_t iterations, std::string salt) {
  if (salt.empty() || salt.size() > kMaxSaltBytes) {
    throw std::invalid_argument("salt must be 1 to " + std::to_string(kMaxSaltBytes) + " bytes");
  }
  PasswordHash h;
  h.kind_ = kind;
  h.iterations_ = effective_iterations(kind, iterations);
  switch (kind) {
    case HashKind::Sha512:
      h.hash_ = sha512_hash(password, salt);
      break;
    case HashKind::Pbkdf2Sha512:
      h.hash_ = pbkdf2_sha512(password, salt, h.iterations_, kSha512Bytes);
      break;
    case HashKind::ScramSha256: {
      ScramCredentials c = make_scram_credentials(password, salt, h.iterations_);
      h.hash_ = std::move(c.stored_key);
      h.server_key_ = std::move(c.server_key);
      break;
    }
  }
  h.salt_ = std::move(salt);
  return h;
}

bool PasswordHash::verify(std::string_view password) const {
  switch (kind_) {
    case HashKind::Sha512:
      return constant_time_equal(sha512_hash(password, salt_), hash_);
    case HashKind::Pbkdf2Sha512:
      return constant_time_equal(pbkdf2_sha512(password, salt_, iterations_, hash_.size()), hash_);
    case HashKind::ScramSha256: {
      const std::string salted = pbkdf2_sha256(password, salt_, iterations_, kSha256Bytes);
      return constant_time_equal(sha256(hmac_sha256(salted, "Client Key")), hash_);
    }
  }
  return false;
}

std::optional<ScramCredentials> PasswordHash::scram_credentials() const {
  if (kind_ != HashKind::ScramSha256) return std::nullopt;
  return ScramCredentials{salt_, iterations_, hash_, server_key_};
}

std::string PasswordHash::to_string() const {
  switch (kind_) {
    case HashKind::Sha512:
      return "$6$" + core::base64_encode(salt_) + "$" + core::base64_encode(hash_);
    case HashKind::Pbkdf2Sha512:
      return "$7$" + std::to_string(iterations_) + "$" + core::base64_encode(salt_) + "$" +
             core::base64_encode(hash_);
    case HashKind::ScramSha256:
      return "$scram-sha-256$" + std::to_string(iterations_) + "$" + core::base64_encode(salt_) +
             "$" + core::base64_encode(hash_) + "$" + core::base64_encode(server_key_);
  }
  return {};
}

}  // namespace starling::auth
