// The client side of SCRAM-SHA-256 (RFC 5802/7677) for tests, written from the RFC
// independently of the server code (src/auth/scram).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "auth/crypto.h"
#include "core/base64.h"

namespace starling::auth {

// The client side of RFC 5802, written from the RFC independently of the server code.
class ScramClient {
 public:
  ScramClient(std::string username, std::string password, std::string nonce,
              std::string gs2_header = "n,,")
      : username_(std::move(username)),
        password_(std::move(password)),
        nonce_(std::move(nonce)),
        gs2_header_(std::move(gs2_header)) {}

  std::string first() {
    std::string escaped;
    for (char c : username_) {
      if (c == ',') {
        escaped += "=2C";
      } else if (c == '=') {
        escaped += "=3D";
      } else {
        escaped += c;
      }
    }
    bare_ = "n=" + escaped + ",r=" + nonce_;
    return gs2_header_ + bare_;
  }

  // Null when the server-first is not what a client accepts.
  std::optional<std::string> client_final(std::string_view server_first) {
    std::map<char, std::string> attrs;
    size_t start = 0;
    while (start <= server_first.size()) {
      size_t comma = server_first.find(',', start);
      if (comma == std::string_view::npos) comma = server_first.size();
      const std::string_view field = server_first.substr(start, comma - start);
      if (field.size() < 2 || field[1] != '=') return std::nullopt;
      attrs[field[0]] = std::string(field.substr(2));
      start = comma + 1;
    }
    const std::string& combined = attrs['r'];
    if (!combined.starts_with(nonce_) || combined.size() == nonce_.size()) return std::nullopt;
    const std::optional<std::string> salt = core::base64_decode(attrs['s']);
    if (!salt) return std::nullopt;
    const uint32_t iterations = static_cast<uint32_t>(std::stoul(attrs['i']));
    const std::string salted = pbkdf2_sha256(password_, *salt, iterations, 32);
    const std::string client_key = hmac_sha256(salted, "Client Key");
    const std::string stored_key = sha256(client_key);
    const std::string without_proof = "c=" + core::base64_encode(gs2_header_) + ",r=" + combined;
    auth_message_ = bare_ + "," + std::string(server_first) + "," + without_proof;
    const std::string signature = hmac_sha256(stored_key, auth_message_);
    server_key_ = hmac_sha256(salted, "Server Key");
    return without_proof + ",p=" + core::base64_encode(xor_bytes(client_key, signature));
  }

  bool server_final_ok(std::string_view server_final) const {
    return server_final == "v=" + core::base64_encode(hmac_sha256(server_key_, auth_message_));
  }

 private:
  std::string username_, password_, nonce_, gs2_header_;
  std::string bare_, auth_message_, server_key_;
};

}  // namespace starling::auth
