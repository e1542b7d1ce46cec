#include "auth/jwt.h"

#include <climits>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth/crypto.h"
#include "core/base64.h"

namespace starling::auth {
namespace {

constexpr size_t kMaxTokenSize = 16 * 1024;
constexpr int kMaxJsonDepth = 64;
constexpr int kMinRsaBits = 2048;               // RFC 7518 3.3
constexpr size_t kP256CoordinateSize = 32;      // RFC 7518 6.2.1.2: full size, zero padded
constexpr size_t kEs256SignatureSize = 2 * 32;  // r || s (RFC 7518 3.4)
constexpr std::string_view kP256GroupName = "prime256v1";

// unique_ptr for OpenSSL objects: Owned<EVP_PKEY, EVP_PKEY_free>.
template <auto Free>
struct Freer {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
template <typename T, auto Free>
using Owned = std::unique_ptr<T, Freer<Free>>;

// What fails in here (a bad signature, a key that does not import) leaves entries on the
// thread's OpenSSL error queue; the TLS code on the same thread reads that queue, so they are
// dropped on the way out, and only they.
class ErrorQueueMark {
 public:
  ErrorQueueMark() { ERR_set_mark(); }
  ~ErrorQueueMark() { ERR_pop_to_mark(); }
  ErrorQueueMark(const ErrorQueueMark&) = delete;
  ErrorQueueMark& operator=(const ErrorQueueMark&) = delete;
};

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Token text in log messages: bounded, control bytes and non-ASCII replaced.
std::string printable(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out;
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  if (text.size() > kMax) out += "...";
  return out;
}

// True when no '[' / '{' nests deeper than limit. nlohmann::json copies, compares and prints
// recursively, so deep documents are refused before it parses them. Brackets inside strings do
// not count; for text that is not JSON the answer does not matter, the parser refuses it.
bool nesting_within(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return false;
    } else if (c == ']' || c == '}') {
      if (--depth < 0) return false;
    }
  }
  return true;
}

std::optional<nlohmann::json> parse_json(std::string_view text) {
  if (!nesting_within(text, kMaxJsonDepth)) return std::nullopt;
  nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

// A string member: null when absent; throws nothing. present_but_not_string tells the two
// failures apart.
std::optional<std::string> string_member(const nlohmann::json& object, const char* name,
                                         bool& present_but_not_string) {
  present_but_not_string = false;
  const auto it = object.find(name);
  if (it == object.end()) return std::nullopt;
  if (!it->is_string()) {
    present_but_not_string = true;
    return std::nullopt;
  }
  return it->get<std::string>();
}

// NumericDate (RFC 7519 2): seconds since the epoch as any JSON number. A fraction rounds up
// to the next second, which compares exactly against a whole-second now; values past int64
// are clamped. Null when v is not a number.
std::optional<int64_t> numeric_date(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = std::ceil(v.get<double>());
    if (std::isnan(d)) return std::nullopt;
    constexpr double kTwoTo63 = 9223372036854775808.0;
    if (d >= kTwoTo63) return INT64_MAX;
    if (d < -kTwoTo63) return INT64_MIN;
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}

int64_t saturating_sub(int64_t a, int64_t b) {
  int64_t difference;
  if (__builtin_sub_overflow(a, b, &difference)) return b < 0 ? INT64_MAX : INT64_MIN;
  return difference;
}

// Verifies with the key's own digest and padding: SHA-256, PKCS#1 v1.5 for RSA; for EC the
// signature is DER.
bool digest_verify(EVP_PKEY* pkey, std::string_view signature, std::string_view data) {
  Owned<EVP_MD_CTX, EVP_MD_CTX_free> ctx(EVP_MD_CTX_new());
  if (!ctx) throw std::runtime_error("EVP_MD_CTX_new failed");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey) != 1) return false;
  return EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(data),
                          data.size()) == 1;
}

// JWS carries an ECDSA signature as r || s, fixed size; OpenSSL verifies the DER
// ECDSA-Sig-Value (RFC 3279).
std::string ecdsa_der(std::string_view r_and_s) {
  const size_t half = r_and_s.size() / 2;
  Owned<ECDSA_SIG, ECDSA_SIG_free> sig(ECDSA_SIG_new());
  Owned<BIGNUM, BN_free> r(BN_bin2bn(bytes_of(r_and_s), static_cast<int>(half), nullptr));
  Owned<BIGNUM, BN_free> s(BN_bin2bn(bytes_of(r_and_s) + half, static_cast<int>(half), nullptr));
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    throw std::runtime_error("ECDSA_SIG allocation failed");
  }
  // sig owns them now.
  (void)r.release();
  (void)s.release();
  unsigned char* der = nullptr;
  const int length = i2d_ECDSA_SIG(sig.get(), &der);
  if (length <= 0) throw std::runtime_error("i2d_ECDSA_SIG failed");
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

std::shared_ptr<EVP_PKEY> share(EVP_PKEY* pkey) {
  return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

// A public key from OSSL_PARAMs (OpenSSL 3's way; RSA_* and EC_KEY_* are deprecated).
std::shared_ptr<EVP_PKEY> public_key_from_params(const char* type, OSSL_PARAM_BLD* builder) {
  Owned<OSSL_PARAM, OSSL_PARAM_free> params(OSSL_PARAM_BLD_to_param(builder));
  Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  return share(pkey);
}

std::shared_ptr<EVP_PKEY> rsa_public_key(std::string_view modulus, std::string_view exponent) {
  Owned<BIGNUM, BN_free> n(BN_bin2bn(bytes_of(modulus), static_cast<int>(modulus.size()), nullptr));
  Owned<BIGNUM, BN_free> e(
      BN_bin2bn(bytes_of(exponent), static_cast<int>(exponent.size()), nullptr));
  Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free> builder(OSSL_PARAM_BLD_new());
  if (!n || !e || !builder ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return nullptr;
  }
  return public_key_from_params("RSA", builder.get());
}

std::shared_ptr<EVP_PKEY> p256_public_key(std::string_view x, std::string_view y) {
  // SEC 1 uncompressed point: 0x04 || x || y.
  std::string point(1, '\x04');
  point.append(x).append(y);
  Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free> builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                      kP256GroupName.data(), kP256GroupName.size()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return nullptr;
  }
  std::shared_ptr<EVP_PKEY> pkey = public_key_from_params("EC", builder.get());
  if (!pkey) return nullptr;
  // A point off the curve would make verification meaningless (invalid curve attacks).
  Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free> check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return pkey;
}

// The label of the first PEM block at or after from ("PUBLIC KEY" for "-----BEGIN PUBLIC
// KEY-----"); start is where that block begins.
std::optional<std::string_view> first_pem_label(std::string_view pem, size_t from, size_t& start) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  start = pem.find(kBegin, from);
  if (start == std::string_view::npos) return std::nullopt;
  const size_t label_start = start + kBegin.size();
  const size_t label_end = pem.find("-----", label_start);
  if (label_end == std::string_view::npos) return std::nullopt;
  return pem.substr(label_start, label_end - label_start);
}

}  // namespace

const char* to_string(JwtError error) {
  switch (error) {
    case JwtError::None:
      return "ok";
    case JwtError::NotAJwt:
      return "not_a_jwt";
    case JwtError::Malformed:
      return "malformed";
    case JwtError::UnsupportedAlgorithm:
      return "unsupported_algorithm";
    case JwtError::NoKey:
      return "no_key";
    case JwtError::BadSignature:
      return "bad_signature";
    case JwtError::Expired:
      return "expired";
    case JwtError::NotYetValid:
      return "not_yet_valid";
  }
  return "unknown";
}

std::optional<ParsedJwt> parse_jwt(std::string_view token, JwtError& error, std::string& message) {
  auto fail = [&](JwtError why, std::string text) -> std::optional<ParsedJwt> {
    error = why;
    message = std::move(text);
    return std::nullopt;
  };
  // Whether this is a token at all is decided by the header alone, so that a password (any
  // length, any dots) goes on to the next authenticator.
  const size_t first_dot = token.find('.');
  if (first_dot == std::string_view::npos) return fail(JwtError::NotAJwt, "no '.' in it");
  const std::optional<std::string> header_text = core::base64url_decode(token.substr(0, first_dot));
  if (!header_text) return fail(JwtError::NotAJwt, "the first segment is not base64url");
  std::optional<nlohmann::json> header = parse_json(*header_text);
  if (!header || !header->is_object() || !header->contains("alg")) {
    return fail(JwtError::NotAJwt, "the first segment is not a JSON object with \"alg\"");
  }

  if (token.size() > kMaxTokenSize) {
    return fail(JwtError::Malformed, "token of " + std::to_string(token.size()) +
                                         " bytes (at most " + std::to_string(kMaxTokenSize) + ")");
  }
  const size_t second_dot = token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos ||
      token.find('.', second_dot + 1) != std::string_view::npos) {
    return fail(JwtError::Malformed, "not three segments (only the JWS compact form is supported)");
  }
  ParsedJwt out;
  bool wrong_type = false;
  std::optional<std::string> alg = string_member(*header, "alg", wrong_type);
  if (!alg) return fail(JwtError::Malformed, "\"alg\" is not a string");
  out.alg = std::move(*alg);
  std::optional<std::string> kid = string_member(*header, "kid", wrong_type);
  if (wrong_type) return fail(JwtError::Malformed, "\"kid\" is not a string");
  if (kid) out.kid = std::move(*kid);
  // RFC 7515 4.1.11: a critical extension that is not understood makes the token invalid, and
  // none is understood here (b64=false among them).
  if (header->contains("crit")) {
    return fail(JwtError::Malformed, "the header has \"crit\" (no extension is supported)");
  }

  const std::optional<std::string> payload_text =
      core::base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
  if (!payload_text) return fail(JwtError::Malformed, "the payload is not base64url");
  std::optional<nlohmann::json> payload = parse_json(*payload_text);
  if (!payload || !payload->is_object()) {
    return fail(JwtError::Malformed, "the payload is not a JSON object");
  }
  std::optional<std::string> signature = core::base64url_decode(token.substr(second_dot + 1));
  if (!signature) return fail(JwtError::Malformed, "the signature is not base64url");

  out.header = std::move(*header);
  out.payload = std::move(*payload);
  out.signing_input = token.substr(0, second_dot);
  out.signature = std::move(*signature);
  return out;
}

JwtKeySet JwtKeySet::from_secret(std::string secret) {
  if (secret.empty()) throw LoadError("the JWT secret is empty");
  JwtKeySet set;
  Key key;
  key.type = KeyType::Secret;
  key.secret = std::move(secret);
  set.keys_.push_back(std::move(key));
  return set;
}

std::optional<JwtKeySet::Key> JwtKeySet::key_from_pkey(std::shared_ptr<EVP_PKEY> pkey,
                                                       std::string& why) {
  Key key;
  if (EVP_PKEY_is_a(pkey.get(), "RSA")) {
    const int bits = EVP_PKEY_get_bits(pkey.get());
    if (bits < kMinRsaBits) {
      why = "an RSA key of " + std::to_string(bits) + " bits (RS256 needs " +
            std::to_string(kMinRsaBits) + " or more)";
      return std::nullopt;
    }
    key.type = KeyType::Rsa;
  } else if (EVP_PKEY_is_a(pkey.get(), "EC")) {
    char group[80] = {};
    size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &length) != 1 ||
        std::string_view(group, length) != kP256GroupName) {
      why = "an EC key on curve '" + printable(std::string_view(group, length)) +
            "' (ES256 needs P-256)";
      return std::nullopt;
    }
    key.type = KeyType::EcP256;
  } else {
    const char* type = EVP_PKEY_get0_type_name(pkey.get());
    why = std::string("a key of type ") + (type ? type : "unknown") +
          " (RSA for RS256 or EC P-256 for ES256 expected)";
    return std::nullopt;
  }
  key.pkey = std::move(pkey);
  return key;
}

JwtKeySet JwtKeySet::from_pem(std::string_view pem, std::string_view name) {
  auto fail = [&](const std::string& why) { return LoadError(std::string(name) + ": " + why); };
  const ErrorQueueMark mark;
  // The first block that holds a public key; any other block (a private key next to a
  // certificate) is never read.
  size_t start = 0;
  std::optional<std::string_view> label;
  std::optional<std::string_view> first_label;
  for (size_t from = 0;; from = start + 1) {
    label = first_pem_label(pem, from, start);
    if (!label) break;
    if (!first_label) first_label = label;
    if (*label == "PUBLIC KEY" || *label == "RSA PUBLIC KEY" || *label == "CERTIFICATE") break;
  }
  if (!label) {
    if (!first_label) throw fail("no PEM block (expected a public key or a certificate)");
    throw fail("holds a " + printable(*first_label) +
               ", not a public key (BEGIN PUBLIC KEY) or a certificate (BEGIN CERTIFICATE)");
  }
  const std::string_view block = pem.substr(start);
  if (block.size() > INT_MAX) throw fail("too large");
  Owned<BIO, BIO_free> bio(BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
  if (!bio) throw std::runtime_error("BIO_new_mem_buf failed");
  std::shared_ptr<EVP_PKEY> pkey;
  if (*label == "CERTIFICATE") {
    Owned<X509, X509_free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) throw fail("the certificate cannot be read");
    pkey = share(X509_get_pubkey(cert.get()));
    if (!pkey) throw fail("the certificate's public key cannot be read");
  } else {
    // One decoder for both SubjectPublicKeyInfo and PKCS#1 RSAPublicKey.
    EVP_PKEY* raw = nullptr;
    Owned<OSSL_DECODER_CTX, OSSL_DECODER_CTX_free> decoder(OSSL_DECODER_CTX_new_for_pkey(
        &raw, "PEM", nullptr, nullptr, EVP_PKEY_PUBLIC_KEY, nullptr, nullptr));
    if (!decoder) throw std::runtime_error("OSSL_DECODER_CTX_new_for_pkey failed");
    if (OSSL_DECODER_from_bio(decoder.get(), bio.get()) != 1 || raw == nullptr) {
      throw fail("the " + std::string(*label) + " cannot be read");
    }
    pkey = share(raw);
  }
  std::string why;
  std::optional<Key> key = key_from_pkey(std::move(pkey), why);
  if (!key) throw fail(why);
  JwtKeySet set;
  set.keys_.push_back(std::move(*key));
  return set;
}

JwtKeySet JwtKeySet::load_pem_file(const std::string& path) {
  return from_pem(read_file_text(path), path);
}

std::optional<JwtKeySet::Key> JwtKeySet::key_from_jwk(const nlohmann::json& jwk, std::string& why) {
  if (!jwk.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  bool wrong_type = false;
  // Members that must be strings when present.
  auto text = [&](const char* name) {
    std::optional<std::string> value = string_member(jwk, name, wrong_type);
    if (wrong_type) why = std::string("\"") + name + "\" is not a string";
    return value;
  };
  // Each member that decides whether the key is usable for verifying.
  const std::optional<std::string> kty = text("kty");
  if (wrong_type) return std::nullopt;
  if (!kty) {
    why = "no \"kty\"";
    return std::nullopt;
  }
  const std::optional<std::string> use = text("use");
  if (wrong_type) return std::nullopt;
  if (use && *use != "sig") {
    why = "\"use\" is '" + printable(*use) + "', not 'sig'";
    return std::nullopt;
  }
  if (const auto ops = jwk.find("key_ops"); ops != jwk.end()) {
    bool verify = false;
    if (ops->is_array()) {
      for (const nlohmann::json& op : *ops)
        verify = verify || (op.is_string() && op.get_ref<const std::string&>() == "verify");
    }
    if (!verify) {
      why = "\"key_ops\" does not hold \"verify\"";
      return std::nullopt;
    }
  }
  const std::optional<std::string> alg = text("alg");
  if (wrong_type) return std::nullopt;
  const std::optional<std::string> kid = text("kid");
  if (wrong_type) return std::nullopt;

  // A member holding base64url bytes; null with why set when missing or not decodable.
  auto bytes = [&](const char* name) -> std::optional<std::string> {
    const std::optional<std::string> encoded = text(name);
    if (wrong_type) return std::nullopt;
    std::optional<std::string> decoded;
    if (encoded) decoded = core::base64url_decode(*encoded);
    if (!decoded || decoded->empty()) {
      why = std::string("\"") + name + "\" is missing or not base64url";
      return std::nullopt;
    }
    return decoded;
  };

  const char* expected_alg = nullptr;
  std::optional<Key> key;
  if (*kty == "oct") {
    expected_alg = "HS256";
    std::optional<std::string> secret = bytes("k");
    if (!secret) return std::nullopt;
    key.emplace();
    key->type = KeyType::Secret;
    key->secret = std::move(*secret);
  } else if (*kty == "RSA") {
    expected_alg = "RS256";
    const std::optional<std::string> n = bytes("n");
    if (!n) return std::nullopt;
    const std::optional<std::string> e = bytes("e");
    if (!e) return std::nullopt;
    if (n->size() > INT_MAX || e->size() > INT_MAX) {
      why = "an RSA key too large";
      return std::nullopt;
    }
    std::shared_ptr<EVP_PKEY> pkey = rsa_public_key(*n, *e);
    if (!pkey) {
      why = "n and e do not make an RSA public key";
      return std::nullopt;
    }
    key = key_from_pkey(std::move(pkey), why);
    if (!key) return std::nullopt;
  } else if (*kty == "EC") {
    expected_alg = "ES256";
    const std::optional<std::string> crv = text("crv");
    if (wrong_type) return std::nullopt;
    if (crv != "P-256") {
      why = "curve '" + printable(crv.value_or("")) + "' (ES256 needs P-256)";
      return std::nullopt;
    }
    const std::optional<std::string> x = bytes("x");
    if (!x) return std::nullopt;
    const std::optional<std::string> y = bytes("y");
    if (!y) return std::nullopt;
    if (x->size() != kP256CoordinateSize || y->size() != kP256CoordinateSize) {
      why = "x and y must be 32 bytes each";
      return std::nullopt;
    }
    std::shared_ptr<EVP_PKEY> pkey = p256_public_key(*x, *y);
    if (!pkey) {
      why = "x and y are not a point on P-256";
      return std::nullopt;
    }
    key = key_from_pkey(std::move(pkey), why);
    if (!key) return std::nullopt;
  } else {
    why = "key type '" + printable(*kty) + "' (RSA, EC or oct expected)";
    return std::nullopt;
  }
  if (alg && *alg != expected_alg) {
    why = "\"alg\" '" + printable(*alg) + "' (this " + *kty + " key could serve only " +
          expected_alg + ")";
    return std::nullopt;
  }
  if (alg) key->alg = *alg;
  if (kid) key->kid = *kid;
  return key;
}

std::optional<JwtKeySet> JwtKeySet::from_jwks(std::string_view json, std::string& error,
                                              std::vector<std::string>* skipped) {
  const ErrorQueueMark mark;
  const std::optional<nlohmann::json> document = parse_json(json);
  if (!document) {
    error = "not JSON (or nested more than " + std::to_string(kMaxJsonDepth) + " levels deep)";
    return std::nullopt;
  }
  const auto keys = document->is_object() ? document->find("keys") : document->end();
  if (keys == document->end() || !keys->is_array()) {
    error = "no \"keys\" array";
    return std::nullopt;
  }
  JwtKeySet set;
  for (size_t i = 0; i < keys->size(); ++i) {
    const nlohmann::json& jwk = (*keys)[i];
    std::string why;
    if (std::optional<Key> key = key_from_jwk(jwk, why)) {
      set.keys_.push_back(std::move(*key));
    } else if (skipped != nullptr) {
      std::string which = "key " + std::to_string(i);
      if (jwk.is_object()) {
        const auto kid = jwk.find("kid");
        if (kid != jwk.end() && kid->is_string()) {
          which += " (kid '" + printable(kid->get_ref<const std::string&>()) + "')";
        }
      }
      skipped->push_back(which + ": " + why);
    }
  }
  return set;
}

void JwtKeySet::add(const JwtKeySet& other) {
  keys_.insert(keys_.end(), other.keys_.begin(), other.keys_.end());
}

bool JwtKeySet::signature_valid(const Key& key, const ParsedJwt& token) {
  switch (key.type) {
    case KeyType::Secret:
      return constant_time_equal(hmac_sha256(key.secret, token.signing_input), token.signature);
    case KeyType::Rsa:
      return digest_verify(key.pkey.get(), token.signature, token.signing_input);
    case KeyType::EcP256:
      if (token.signature.size() != kEs256SignatureSize) return false;
      return digest_verify(key.pkey.get(), ecdsa_der(token.signature), token.signing_input);
  }
  return false;
}

JwtError JwtKeySet::check_signature(const ParsedJwt& token, std::string& message) const {
  KeyType type;
  if (token.alg == "HS256") {
    type = KeyType::Secret;
  } else if (token.alg == "RS256") {
    type = KeyType::Rsa;
  } else if (token.alg == "ES256") {
    type = KeyType::EcP256;
  } else {
    message = "unsupported alg '" + printable(token.alg) + "' (HS256, RS256 or ES256)";
    return JwtError::UnsupportedAlgorithm;
  }
  const ErrorQueueMark mark;
  bool tried = false;
  for (const Key& key : keys_) {
    if (key.type != type || (!key.alg.empty() && key.alg != token.alg)) continue;
    if (!token.kid.empty() && !key.kid.empty() && key.kid != token.kid) continue;
    tried = true;
    if (signature_valid(key, token)) return JwtError::None;
  }
  const std::string kid = token.kid.empty() ? "" : " kid '" + printable(token.kid) + "'";
  if (!tried) {
    message = "no key for " + token.alg + kid;
    return JwtError::NoKey;
  }
  message = "bad signature (" + token.alg + kid + ")";
  return JwtError::BadSignature;
}

JwtVerdict verify_jwt(std::string_view token, const JwtKeySet& keys, int64_t now_s,
                      int64_t leeway_s) {
  JwtVerdict verdict;
  std::optional<ParsedJwt> parsed = parse_jwt(token, verdict.error, verdict.message);
  if (!parsed) return verdict;
  verdict.error = keys.check_signature(*parsed, verdict.message);
  if (verdict.error != JwtError::None) return verdict;

  // Only now, with the signature good, does anything in the payload count.
  auto time_claim = [&](const char* name, std::optional<int64_t>& seconds) {
    const auto it = parsed->payload.find(name);
    if (it == parsed->payload.end()) return true;
    seconds = numeric_date(*it);
    if (seconds) return true;
    verdict.error = JwtError::Malformed;
    verdict.message = std::string("\"") + name + "\" is not a number";
    return false;
  };
  std::optional<int64_t> not_before;
  if (!time_claim("exp", verdict.expires_at) || !time_claim("nbf", not_before)) return verdict;
  verdict.claims = std::move(parsed->payload);
  const int64_t leeway = leeway_s > 0 ? leeway_s : 0;
  if (verdict.expires_at && now_s >= saturating_add(*verdict.expires_at, leeway)) {
    verdict.error = JwtError::Expired;
    verdict.message =
        "token expired " + std::to_string(saturating_sub(now_s, *verdict.expires_at)) + " s ago";
  } else if (not_before && now_s < saturating_sub(*not_before, leeway)) {
    verdict.error = JwtError::NotYetValid;
    verdict.message =
        "token not valid for another " + std::to_string(saturating_sub(*not_before, now_s)) + " s";
  }
  return verdict;
}

}  // namespace starling::auth
