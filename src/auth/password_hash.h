// One password hash as it appears after "user:" in a password file. Three kinds:
//   $6$<salt>$<hash>                       SHA-512(password || salt), mosquitto 1.x
//   $7$<iterations>$<salt>$<hash>          PBKDF2-HMAC-SHA512, 64-byte hash, mosquitto 2.x
//   $scram-sha-256$<iterations>$<salt>$<StoredKey>$<ServerKey>
//                                          RFC 5802/7677 values from PBKDF2-HMAC-SHA256; ours,
//                                          because SCRAM needs keys a $7$ hash cannot give
// Salts and hashes are standard base64. Passwords are used as bytes: no SASLprep, so SCRAM
// clients must send the same bytes (the case for any ASCII password).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace starling::auth {

enum class HashKind { Sha512, Pbkdf2Sha512, ScramSha256 };

// What a SCRAM-SHA-256 server needs for one user (raw bytes, not base64).
struct ScramCredentials {
  std::string salt;
  uint32_t iterations = 0;
  std::string stored_key;  // 32 bytes
  std::string server_key;  // 32 bytes
};

// Checks run on the event loop, so a file cannot ask for unbounded work per CONNECT.
inline constexpr uint32_t kMaxHashIterations = 1'000'000;
// mosquitto_passwd's default; mosquitto reads the count from each hash, so any count is
// compatible, but its own default keeps CONNECT cost where Mosquitto users expect it.
inline constexpr uint32_t kDefaultPbkdf2Iterations = 101;
// RFC 7677's minimum for SCRAM-SHA-256.
inline constexpr uint32_t kDefaultScramIterations = 4096;

// SaltedPassword -> ClientKey -> StoredKey, and ServerKey (RFC 5802 section 3).
ScramCredentials make_scram_credentials(std::string_view password, std::string salt,
                                        uint32_t iterations);

class PasswordHash {
 public:
  // Throws std::invalid_argument whose what() is the reason (no file or line).
  static PasswordHash parse(std::string_view text);

  // A fresh hash with a random salt (12 bytes for $6$/$7$ like mosquitto, 16 for SCRAM).
  // iterations 0 means the kind's default; $6$ has no iteration count and ignores it. Throws
  // std::invalid_argument when iterations exceeds kMaxHashIterations.
  static PasswordHash create(std::string_view password, HashKind kind, uint32_t iterations = 0);
  // The same with a given salt (raw bytes), for reproducible tests.
  static PasswordHash create_with_salt(std::string_view password, HashKind kind,
                                       uint32_t iterations, std::string salt);

  // Constant-time comparison of the recomputed hash.
  bool verify(std::string_view password) const;

  HashKind kind() const { return kind_; }
  uint32_t iterations() const { return iterations_; }
  // Only for the SCRAM kind.
  std::optional<ScramCredentials> scram_credentials() const;

  // The text form that parse() reads back.
  std::string to_string() const;

 private:
  HashKind kind_ = HashKind::Pbkdf2Sha512;
  uint32_t iterations_ = 0;
  std::string salt_;
  std::string hash_;        // SCRAM: StoredKey
  std::string server_key_;  // SCRAM only
};

}  // namespace starling::auth
