// [auth]: who may connect and what they may do. Besides the password and ACL files, an HTTP
// service ([auth.http]) and JSON Web Tokens ([auth.jwt]) can decide; the order in which they are
// asked is in docs/configuration.md ("The authentication chain").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace starling::config {

// [auth.http]: a service of the user's that answers CONNECTs and topic checks (EMQX's fields).
struct HttpAuthSettings {
  std::string connect_url;  // POSTed at CONNECT; "" = not asked
  std::string acl_url;      // POSTed for PUBLISH and SUBSCRIBE checks; "" = not asked
  uint32_t timeout_ms = 5000;
  uint32_t pool_size = 8;        // connections to the service at most (kept alive)
  uint32_t max_pending = 10000;  // requests queued or in flight; more fail at once
  uint32_t cache_ttl_s = 60;     // answers kept this long; 0 = no cache
  uint32_t cache_max_entries = 100000;
  std::string on_error = "deny";     // service down, timeout, 5xx, bad answer: "deny" or "ignore"
  std::string ca_file;               // CA for https URLs; "" = the system's
  std::vector<std::string> headers;  // "Name: value", sent with every request
  bool enabled() const { return !connect_url.empty() || !acl_url.empty(); }
  bool operator==(const HttpAuthSettings&) const = default;
};

// [auth.jwt]: a token in the CONNECT's password (or user name), signed by the user's issuer.
struct JwtSettings {
  std::string secret;           // HS256 shared secret
  std::string secret_file;      // the same from a file (its text, without a final newline)
  std::string public_key_file;  // PEM public key or certificate: RS256 (RSA) or ES256 (P-256)
  std::string jwks_url;         // a JWKS document, fetched at start and every jwks_refresh_s
  uint32_t jwks_refresh_s = 300;
  std::string from = "password";       // "password" or "username": where the token is
  std::string username_claim = "sub";  // the user name the client gets; "" = the CONNECT's
  std::string acl_claim = "acl";       // rules in EMQX's forms; "" = none from the token
  uint32_t leeway_s = 0;               // clock skew allowed on exp and nbf
  bool disconnect_on_expiry = true;    // a connected client whose token expires is disconnected
  bool enabled() const {
    return !secret.empty() || !secret_file.empty() || !public_key_file.empty() || !jwks_url.empty();
  }
  bool operator==(const JwtSettings&) const = default;
};

struct AuthSettings {
  std::string password_file;  // mosquitto_passwd format ($7$, $6$) or starling passwd --scram
  std::string acl_file;       // Mosquitto's acl_file format
  HttpAuthSettings http;
  JwtSettings jwt;
  // Something checks who clients are: then anonymous clients are refused unless a listener says.
  bool checks_identity() const {
    return !password_file.empty() || !http.connect_url.empty() || jwt.enabled();
  }
  bool operator==(const AuthSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [auth] section, for the loader (config.cc).
Field<Config> auth_section();

}  // namespace starling::config
