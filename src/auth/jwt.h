// JSON Web Token verification for [auth.jwt]: a token in the CONNECT (RFC 7519), in the JWS
// compact serialization (RFC 7515), signed with HS256, RS256 or ES256 (RFC 7518); keys from a
// shared secret, a PEM file or a JWKS document (RFC 7517). The cryptography is OpenSSL 3's
// libcrypto.
//
// Rules:
// - Three base64url segments, no padding; header and payload are JSON objects. An input that
//   does not start with a base64url JSON object holding "alg" is NotAJwt, so a password falls
//   through to the next authenticator; anything broken after that is Malformed (it was meant
//   as a token). A header with "crit" is Malformed: no extension is understood.
// - Only HS256, RS256 and ES256; "none" and every other alg is UnsupportedAlgorithm.
// - A key verifies only its own algorithm: a secret HS256, an RSA key RS256, a P-256 key ES256,
//   so an RSA public key never serves as an HMAC secret (the alg confusion attack). A JWKS key
//   with "alg" verifies only that alg.
// - "kid" picks among keys that have one: a token with a kid is tried against the keys with
//   that kid; a token without one against every key of its algorithm. A key without a kid (the
//   secret, a PEM file, a JWKS entry without "kid") cannot be told apart by kid, so it is tried
//   for every token of its algorithm, kid or not. No key to try is NoKey.
// - The signature is checked before anything in the payload: a forged token is BadSignature
//   whatever its claims. Then "exp" and "nbf" (NumericDate: a JSON number, fractions rounded
//   up to the next second): expired when now >= exp + leeway, not yet valid when
//   now < nbf - leeway. Other claims (iss, aud, sub...) are the caller's.
// - Bounded work: tokens over 16 KiB are Malformed, and JSON nested deeper than 64 levels is
//   refused before nlohmann::json (which recurses) sees it.
//
// A JwtKeySet is immutable once built (add() aside) and may be shared between threads; its
// keys are reference counted, so copies are cheap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>
#include <nlohmann/json.hpp>

#include "auth/load_error.h"

namespace starling::auth {

enum class JwtError : uint8_t {
  None,
  NotAJwt,
  Malformed,
  UnsupportedAlgorithm,
  NoKey,
  BadSignature,
  Expired,
  NotYetValid,
};

// "ok", "not_a_jwt", "malformed", "unsupported_algorithm", "no_key", "bad_signature",
// "expired", "not_yet_valid": stable, used as metric labels.
const char* to_string(JwtError error);

// The token taken apart, no cryptography: what verify_jwt checks the signature of.
struct ParsedJwt {
  nlohmann::json header;           // a JSON object
  nlohmann::json payload;          // a JSON object
  std::string_view signing_input;  // "header.payload" as sent: points into the token
  std::string signature;           // decoded
  std::string alg;                 // the header's "alg"
  std::string kid;                 // the header's "kid"; "" without one (or an empty one)
};

// Null with error (NotAJwt or Malformed) and message set when token is not a well-formed JWS.
// The alg is not checked here.
std::optional<ParsedJwt> parse_jwt(std::string_view token, JwtError& error, std::string& message);

class JwtKeySet {
 public:
  JwtKeySet() = default;

  // An HS256 shared secret (its bytes as given). Throws LoadError when it is empty.
  static JwtKeySet from_secret(std::string secret);
  // PEM text: a public key ("BEGIN PUBLIC KEY" or PKCS#1 "BEGIN RSA PUBLIC KEY") or a
  // certificate ("BEGIN CERTIFICATE"; the first block of a chain). RSA of 2048 bits or more
  // (RFC 7518 3.3) gives RS256, EC P-256 gives ES256. A private key is refused rather than
  // kept in memory. Throws LoadError "name: reason".
  static JwtKeySet from_pem(std::string_view pem, std::string_view name);
  // Throws LoadError "path: reason".
  static JwtKeySet load_pem_file(const std::string& path);
  // A JWKS document: {"keys": [...]} with "kty" RSA (n, e), EC (crv P-256, x, y) or oct (k).
  // A key that cannot verify a signature here (a "use" other than "sig", "key_ops" without
  // "verify", another kty, crv or alg, an RSA key under 2048 bits) or whose members do not
  // decode is skipped, with a line saying why added to *skipped when given, so one odd key in
  // an issuer's set does not lose the others. Null with error set when the document is not
  // JSON or has no "keys" array.
  static std::optional<JwtKeySet> from_jwks(std::string_view json, std::string& error,
                                            std::vector<std::string>* skipped = nullptr);

  size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  // Appends other's keys (a config with a secret, a PEM file and a JWKS uses all of them).
  void add(const JwtKeySet& other);

  // None when a key for the token's alg and kid verifies its signature; otherwise
  // UnsupportedAlgorithm, NoKey or BadSignature, with message saying why.
  JwtError check_signature(const ParsedJwt& token, std::string& message) const;

 private:
  enum class KeyType : uint8_t { Secret, Rsa, EcP256 };
  struct Key {
    KeyType type = KeyType::Secret;
    std::string kid;                 // "" = none
    std::string alg;                 // a JWKS key's "alg"; "" = its type's algorithm
    std::string secret;              // Secret
    std::shared_ptr<EVP_PKEY> pkey;  // Rsa, EcP256
  };

  // Null with why set when the JWK cannot be used here.
  static std::optional<Key> key_from_jwk(const nlohmann::json& jwk, std::string& why);
  // An RSA or EC P-256 public key as a Key; null with why set for anything else.
  static std::optional<Key> key_from_pkey(std::shared_ptr<EVP_PKEY> pkey, std::string& why);
  static bool signature_valid(const Key& key, const ParsedJwt& token);

  std::vector<Key> keys_;
};

struct JwtVerdict {
  JwtError error = JwtError::None;
  std::string message;  // for the log, e.g. "token expired 12 s ago"; "" when ok
  // The payload: set when ok, and for Expired and NotYetValid (the signature was good).
  nlohmann::json claims;
  std::optional<int64_t> expires_at;  // "exp", seconds since the epoch, when the token has one
  bool ok() const { return error == JwtError::None; }
};

// now_s: seconds since the epoch; leeway_s: the clock skew allowed on exp and nbf (a negative
// leeway counts as 0). Throws only when OpenSSL or the allocator fails, never on the token.
JwtVerdict verify_jwt(std::string_view token, const JwtKeySet& keys, int64_t now_s,
                      int64_t leeway_s = 0);

}  // namespace starling::auth
