// JSON Web Tokens: real tokens signed here with OpenSSL (HS256, RS256 from RSA 2048, ES256 from
// P-256) and tokens made by PyJWT, verified through every error path: wrong keys, tampering,
// alg none and alg confusion, time claims and leeway, kid selection in a rotating JWKS, key
// loading (PEM, certificate, JWKS) and inputs that are passwords rather than tokens.
#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/crypto.h"
#include "auth/jwt.h"
#include "core/base64.h"

namespace starling::auth {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'700'000'000;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string b64url(std::string_view bytes) {
  return core::base64url_encode(bytes);
}

Pkey rsa_key(size_t bits = 2048) {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", bits));
  EXPECT_NE(key, nullptr);
  return key;
}

Pkey ec_key(const char* curve = "P-256") {
  Pkey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  EXPECT_NE(key, nullptr);
  return key;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(length));
}

std::string public_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio, key), 1);
  std::string pem = bio_text(bio);
  BIO_free(bio);
  return pem;
}

std::string private_pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::string pem = bio_text(bio);
  BIO_free(bio);
  return pem;
}

// "BEGIN RSA PUBLIC KEY": PKCS#1, what `openssl rsa -RSAPublicKey_out` writes.
std::string pkcs1_public_pem(EVP_PKEY* key) {
  OSSL_ENCODER_CTX* ctx =
      OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", nullptr);
  unsigned char* data = nullptr;
  size_t length = 0;
  EXPECT_EQ(OSSL_ENCODER_to_data(ctx, &data, &length), 1);
  std::string pem(reinterpret_cast<char*>(data), length);
  OPENSSL_free(data);
  OSSL_ENCODER_CTX_free(ctx);
  return pem;
}

// A self-signed certificate for key.
std::string certificate_pem(EVP_PKEY* key) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("issuer"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  EXPECT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_X509(bio, cert), 1);
  std::string pem = bio_text(bio);
  BIO_free(bio);
  X509_free(cert);
  return pem;
}

std::string digest_sign(EVP_PKEY* key, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key), 1);
  size_t length = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &length, bytes, data.size()), 1);
  std::string signature(length, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &length, bytes,
                           data.size()),
            1);
  signature.resize(length);
  EVP_MD_CTX_free(ctx);
  return signature;
}

// The DER ECDSA-Sig-Value OpenSSL makes, as JWS's fixed-size r || s.
std::string der_to_raw(std::string_view der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  EXPECT_NE(sig, nullptr);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32);
  ECDSA_SIG_free(sig);
  return raw;
}

// How a signer turns the signing input into a signature.
using Signer = std::string (*)(EVP_PKEY* key, std::string_view secret, std::string_view input);

std::string token_with(const json& header, const json& payload, const std::string& signature) {
  return b64url(header.dump()) + "." + b64url(payload.dump()) + "." + b64url(signature);
}

std::string sign_hs256(std::string_view secret, const json& header, const json& payload) {
  const std::string input = b64url(header.dump()) + "." + b64url(payload.dump());
  return input + "." + b64url(hmac_sha256(secret, input));
}

std::string sign_rs256(EVP_PKEY* key, const json& header, const json& payload) {
  const std::string input = b64url(header.dump()) + "." + b64url(payload.dump());
  return input + "." + b64url(digest_sign(key, input));
}

std::string sign_es256(EVP_PKEY* key, const json& header, const json& payload) {
  const std::string input = b64url(header.dump()) + "." + b64url(payload.dump());
  return input + "." + b64url(der_to_raw(digest_sign(key, input)));
}

json header(const char* alg, const char* kid = nullptr) {
  json h = {{"alg", alg}, {"typ", "JWT"}};
  if (kid != nullptr) h["kid"] = kid;
  return h;
}

json claims(int64_t exp = kNow + 600) {
  return {{"sub", "alice"}, {"exp", exp}, {"acl", {{"pub", {"t/#"}}}}};
}

// The public key's JWK members, exported through OpenSSL 3's parameters.
json rsa_jwk(EVP_PKEY* key, const char* kid) {
  auto member = [&](const char* name) {
    BIGNUM* bn = nullptr;
    EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &bn), 1);
    std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
    BN_free(bn);
    return b64url(bytes);
  };
  json jwk = {
      {"kty", "RSA"}, {"n", member(OSSL_PKEY_PARAM_RSA_N)}, {"e", member(OSSL_PKEY_PARAM_RSA_E)}};
  if (kid != nullptr) jwk["kid"] = kid;
  return jwk;
}

json ec_jwk(EVP_PKEY* key, const char* kid) {
  unsigned char point[1 + 2 * 66];  // up to P-521
  size_t length = 0;
  EXPECT_EQ(
      EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &length),
      1);
  EXPECT_EQ(point[0], 0x04);  // uncompressed: 0x04 || x || y
  const std::string_view bytes(reinterpret_cast<const char*>(point), length);
  const size_t half = (length - 1) / 2;
  json jwk = {{"kty", "EC"},
              {"crv", "P-256"},
              {"x", b64url(bytes.substr(1, half))},
              {"y", b64url(bytes.substr(1 + half, half))}};
  if (kid != nullptr) jwk["kid"] = kid;
  return jwk;
}

JwtKeySet jwks(const json& keys, std::vector<std::string>* skipped = nullptr) {
  std::string error;
  std::optional<JwtKeySet> set = JwtKeySet::from_jwks(json{{"keys", keys}}.dump(), error, skipped);
  EXPECT_TRUE(set.has_value()) << error;
  return set.value_or(JwtKeySet());
}

JwtError verify_error(std::string_view token, const JwtKeySet& keys, int64_t now = kNow,
                      int64_t leeway = 0) {
  return verify_jwt(token, keys, now, leeway).error;
}

std::string load_error(std::string_view pem) {
  try {
    JwtKeySet::from_pem(pem, "key.pem");
  } catch (const LoadError& e) {
    return e.what();
  }
  return "no error";
}

// The segment at index of a token, and the token with it replaced.
std::string with_segment(std::string_view token, int index, std::string_view replacement) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = token.find('.', start);
    parts.emplace_back(token.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  parts.at(static_cast<size_t>(index)) = replacement;
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i)
    out += (i ? "." : "") + parts[i];
  return out;
}

TEST(Base64Url, RoundTripsWithoutPadding) {
  EXPECT_EQ(core::base64url_encode(""), "");
  EXPECT_EQ(core::base64url_encode("f"), "Zg");
  EXPECT_EQ(core::base64url_encode("fo"), "Zm8");
  EXPECT_EQ(core::base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(core::base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(core::base64url_decode("-_8"), "\xfb\xff");
  EXPECT_EQ(core::base64url_decode("Zm8"), "fo");
  EXPECT_EQ(core::base64url_decode(""), "");
  for (int length = 0; length < 40; ++length) {
    std::string bytes;
    for (int i = 0; i < length; ++i)
      bytes += static_cast<char>(i * 37 + length);
    EXPECT_EQ(core::base64url_decode(core::base64url_encode(bytes)), bytes);
  }
}

TEST(Base64Url, RefusesPaddingTheStandardAlphabetAndLooseBits) {
  EXPECT_FALSE(core::base64url_decode("Zm8="));
  EXPECT_FALSE(core::base64url_decode("+/8"));
  EXPECT_FALSE(core::base64url_decode("Zm9 v"));
  EXPECT_FALSE(core::base64url_decode("Z"));
  EXPECT_FALSE(core::base64url_decode("Zm9"));  // "Zm8" with a set bit past the last byte
  // The standard decoder keeps its behaviour: padding optional, no URL alphabet.
  EXPECT_EQ(core::base64_decode("Zm8="), "fo");
  EXPECT_EQ(core::base64_decode("Zm8"), "fo");
  EXPECT_FALSE(core::base64_decode("-_8"));
  EXPECT_EQ(core::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(core::base64_encode("f"), "Zg==");
}

TEST(Jwt, Hs256Valid) {
  const JwtKeySet keys = JwtKeySet::from_secret("s3cret");
  const JwtVerdict v = verify_jwt(sign_hs256("s3cret", header("HS256"), claims()), keys, kNow);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_STREQ(to_string(v.error), "ok");
  EXPECT_EQ(v.claims["sub"], "alice");
  EXPECT_EQ(v.expires_at, kNow + 600);
  EXPECT_TRUE(v.message.empty());
}

TEST(Jwt, Hs256WrongSecretOrTamperedPayload) {
  const JwtKeySet keys = JwtKeySet::from_secret("s3cret");
  EXPECT_EQ(verify_error(sign_hs256("other", header("HS256"), claims()), keys),
            JwtError::BadSignature);
  const std::string token = sign_hs256("s3cret", header("HS256"), claims());
  json more = claims();
  more["sub"] = "admin";
  EXPECT_EQ(verify_error(with_segment(token, 1, b64url(more.dump())), keys),
            JwtError::BadSignature);
  // A truncated signature.
  const std::string mac = hmac_sha256("s3cret", token.substr(0, token.rfind('.')));
  EXPECT_EQ(verify_error(with_segment(token, 2, b64url(mac.substr(0, 31))), keys),
            JwtError::BadSignature);
  EXPECT_EQ(verify_error(with_segment(token, 2, ""), keys), JwtError::BadSignature);
}

TEST(Jwt, Rs256ValidAndWrongKey) {
  const Pkey key = rsa_key();
  const Pkey other = rsa_key();
  const JwtKeySet keys = JwtKeySet::from_pem(public_pem(key.get()), "rsa.pem");
  ASSERT_EQ(keys.size(), 1u);
  const std::string token = sign_rs256(key.get(), header("RS256"), claims());
  const JwtVerdict v = verify_jwt(token, keys, kNow);
  ASSERT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.claims["acl"]["pub"][0], "t/#");
  EXPECT_EQ(verify_error(sign_rs256(other.get(), header("RS256"), claims()), keys),
            JwtError::BadSignature);
  json more = claims();
  more["exp"] = kNow + 100000;
  EXPECT_EQ(verify_error(with_segment(token, 1, b64url(more.dump())), keys),
            JwtError::BadSignature);
  // An RS256 token has no key in a set of EC keys.
  EXPECT_EQ(verify_error(token, JwtKeySet::from_pem(public_pem(ec_key().get()), "ec.pem")),
            JwtError::NoKey);
}

TEST(Jwt, Es256ValidAndWrongKey) {
  const Pkey key = ec_key();
  const Pkey other = ec_key();
  const JwtKeySet keys = JwtKeySet::from_pem(public_pem(key.get()), "ec.pem");
  const std::string token = sign_es256(key.get(), header("ES256"), claims());
  ASSERT_TRUE(verify_jwt(token, keys, kNow).ok()) << verify_jwt(token, keys, kNow).message;
  EXPECT_EQ(verify_error(sign_es256(other.get(), header("ES256"), claims()), keys),
            JwtError::BadSignature);
  json more = claims();
  more["sub"] = "mallory";
  EXPECT_EQ(verify_error(with_segment(token, 1, b64url(more.dump())), keys),
            JwtError::BadSignature);
  // The signature must be r || s of 64 bytes: OpenSSL's DER form or a cut one are refused.
  const std::string input = b64url(header("ES256").dump()) + "." + b64url(claims().dump());
  EXPECT_EQ(verify_error(input + "." + b64url(digest_sign(key.get(), input)), keys),
            JwtError::BadSignature);
  const std::string raw = der_to_raw(digest_sign(key.get(), input));
  EXPECT_EQ(verify_error(input + "." + b64url(raw.substr(0, 63)), keys), JwtError::BadSignature);
  EXPECT_EQ(verify_error(input + "." + b64url(raw + std::string(1, '\0')), keys),
            JwtError::BadSignature);
  EXPECT_EQ(verify_error(input + "." + b64url(std::string(64, '\0')), keys),
            JwtError::BadSignature);
  EXPECT_EQ(verify_error(input + "." + b64url(raw), keys), JwtError::None);
}

TEST(Jwt, AlgNoneAndOthersAreUnsupported) {
  const JwtKeySet keys = JwtKeySet::from_secret("s3cret");
  for (const char* alg : {"none", "None", "HS512", "RS384", "PS256", "EdDSA", ""}) {
    EXPECT_EQ(verify_error(token_with(header(alg), claims(), ""), keys),
              JwtError::UnsupportedAlgorithm)
        << alg;
  }
  const JwtVerdict v = verify_jwt(token_with(header("none"), claims(), ""), keys, kNow);
  EXPECT_STREQ(to_string(v.error), "unsupported_algorithm");
  EXPECT_NE(v.message.find("'none'"), std::string::npos) << v.message;
  EXPECT_TRUE(v.claims.is_null());
}

// The classic attack: the RS256 public key (public knowledge) used as an HS256 secret. An RSA
// key verifies only RS256, so the HMAC is never computed with it.
TEST(Jwt, AlgConfusionFails) {
  const Pkey key = rsa_key();
  const std::string pem = public_pem(key.get());
  const JwtKeySet rsa_only = JwtKeySet::from_pem(pem, "rsa.pem");
  const std::string forged = sign_hs256(pem, header("HS256"), claims());
  EXPECT_EQ(verify_error(forged, rsa_only), JwtError::NoKey);
  // With an HS256 secret configured too, the forgery meets that secret only.
  JwtKeySet both = JwtKeySet::from_secret("the real secret");
  both.add(rsa_only);
  EXPECT_EQ(verify_error(forged, both), JwtError::BadSignature);
  // The JWK's raw modulus as the secret fails the same way.
  const JwtKeySet from_jwks = jwks(json::array({rsa_jwk(key.get(), nullptr)}));
  const std::string modulus =
      *core::base64url_decode(rsa_jwk(key.get(), nullptr)["n"].get<std::string>());
  EXPECT_EQ(verify_error(sign_hs256(modulus, header("HS256"), claims()), from_jwks),
            JwtError::NoKey);
  EXPECT_FALSE(verify_jwt(forged, both, kNow).ok());
}

TEST(Jwt, ExpiryNotBeforeAndLeeway) {
  const JwtKeySet keys = JwtKeySet::from_secret("k");
  auto token = [](json payload) { return sign_hs256("k", header("HS256"), payload); };
  // exp is the first second the token is no longer valid.
  EXPECT_EQ(verify_error(token({{"exp", kNow + 1}}), keys), JwtError::None);
  EXPECT_EQ(verify_error(token({{"exp", kNow}}), keys), JwtError::Expired);
  const JwtVerdict expired = verify_jwt(token({{"exp", kNow - 12}, {"sub", "a"}}), keys, kNow);
  EXPECT_EQ(expired.error, JwtError::Expired);
  EXPECT_EQ(expired.message, "token expired 12 s ago");
  EXPECT_EQ(expired.expires_at, kNow - 12);
  EXPECT_EQ(expired.claims["sub"], "a");
  EXPECT_STREQ(to_string(expired.error), "expired");
  // nbf is the first second it is valid.
  EXPECT_EQ(verify_error(token({{"nbf", kNow}}), keys), JwtError::None);
  const JwtVerdict early = verify_jwt(token({{"nbf", kNow + 30}}), keys, kNow);
  EXPECT_EQ(early.error, JwtError::NotYetValid);
  EXPECT_EQ(early.message, "token not valid for another 30 s");
  EXPECT_STREQ(to_string(early.error), "not_yet_valid");
  // Leeway widens both ends by that many seconds.
  EXPECT_EQ(verify_error(token({{"exp", kNow - 9}}), keys, kNow, 10), JwtError::None);
  EXPECT_EQ(verify_error(token({{"exp", kNow - 10}}), keys, kNow, 10), JwtError::Expired);
  EXPECT_EQ(verify_error(token({{"nbf", kNow + 10}}), keys, kNow, 10), JwtError::None);
  EXPECT_EQ(verify_error(token({{"nbf", kNow + 11}}), keys, kNow, 10), JwtError::NotYetValid);
  EXPECT_EQ(verify_error(token({{"exp", kNow - 1}}), keys, kNow, -100), JwtError::Expired);
  // Fractions count: a whole-second now is past exp - 0.5 and before nbf + 0.5.
  EXPECT_EQ(verify_error(token({{"exp", kNow + 0.5}}), keys), JwtError::None);
  EXPECT_EQ(verify_error(token({{"exp", kNow - 0.5}}), keys), JwtError::Expired);
  EXPECT_EQ(verify_error(token({{"nbf", kNow - 0.5}}), keys), JwtError::None);
  EXPECT_EQ(verify_error(token({{"nbf", kNow + 0.5}}), keys), JwtError::NotYetValid);
  EXPECT_EQ(verify_jwt(token({{"exp", kNow + 0.5}}), keys, kNow).expires_at, kNow + 1);
  // Huge and negative values neither overflow nor pass.
  EXPECT_EQ(verify_error(token({{"exp", 1e300}}), keys), JwtError::None);
  EXPECT_EQ(verify_error(token({{"exp", 18446744073709551615u}}), keys, kNow, INT64_MAX),
            JwtError::None);
  EXPECT_EQ(verify_error(token({{"exp", -1e300}}), keys), JwtError::Expired);
  EXPECT_EQ(verify_error(token({{"nbf", -9223372036854775807LL - 1}}), keys, kNow, INT64_MAX),
            JwtError::None);
  EXPECT_EQ(verify_jwt(token({{"exp", 1e300}}), keys, kNow).expires_at, INT64_MAX);
  // Not a number: malformed, after the signature.
  EXPECT_EQ(verify_error(token({{"exp", "tomorrow"}}), keys), JwtError::Malformed);
  EXPECT_EQ(verify_error(token({{"nbf", nullptr}}), keys), JwtError::Malformed);
  EXPECT_EQ(verify_error(token({{"exp", json::array({1})}}), keys), JwtError::Malformed);
  EXPECT_EQ(verify_error(token({{"exp", true}}), keys), JwtError::Malformed);
}

TEST(Jwt, SignatureIsCheckedBeforeTimeClaims) {
  const JwtKeySet keys = JwtKeySet::from_secret("k");
  EXPECT_EQ(verify_error(sign_hs256("wrong", header("HS256"), {{"exp", kNow - 100}}), keys),
            JwtError::BadSignature);
  EXPECT_EQ(verify_error(sign_hs256("wrong", header("HS256"), {{"exp", "x"}}), keys),
            JwtError::BadSignature);
  const JwtVerdict v = verify_jwt(sign_hs256("wrong", header("HS256"), claims()), keys, kNow);
  EXPECT_TRUE(v.claims.is_null());
  EXPECT_FALSE(v.expires_at);
}

// A JWKS during a key rotation: tokens name their key by kid.
TEST(Jwt, KidSelectsTheKeyInARotatingJwks) {
  const Pkey old_key = rsa_key();
  const Pkey new_key = rsa_key();
  const JwtKeySet keys =
      jwks(json::array({rsa_jwk(old_key.get(), "old"), rsa_jwk(new_key.get(), "new")}));
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_TRUE(
      verify_jwt(sign_rs256(old_key.get(), header("RS256", "old"), claims()), keys, kNow).ok());
  EXPECT_TRUE(
      verify_jwt(sign_rs256(new_key.get(), header("RS256", "new"), claims()), keys, kNow).ok());
  // The right key under the wrong name is not tried.
  EXPECT_EQ(verify_error(sign_rs256(new_key.get(), header("RS256", "old"), claims()), keys),
            JwtError::BadSignature);
  const JwtVerdict unknown =
      verify_jwt(sign_rs256(new_key.get(), header("RS256", "gone"), claims()), keys, kNow);
  EXPECT_EQ(unknown.error, JwtError::NoKey);
  EXPECT_EQ(unknown.message, "no key for RS256 kid 'gone'");
  EXPECT_STREQ(to_string(unknown.error), "no_key");
  // Without a kid every key of the algorithm is tried.
  EXPECT_TRUE(verify_jwt(sign_rs256(new_key.get(), header("RS256"), claims()), keys, kNow).ok());
  EXPECT_TRUE(verify_jwt(sign_rs256(old_key.get(), header("RS256"), claims()), keys, kNow).ok());
  // A key without a kid (a PEM file) serves tokens with any kid.
  JwtKeySet merged = JwtKeySet::from_pem(public_pem(new_key.get()), "new.pem");
  merged.add(jwks(json::array({rsa_jwk(old_key.get(), "old")})));
  EXPECT_EQ(merged.size(), 2u);
  EXPECT_TRUE(
      verify_jwt(sign_rs256(new_key.get(), header("RS256", "other"), claims()), merged, kNow).ok());
  EXPECT_TRUE(
      verify_jwt(sign_rs256(old_key.get(), header("RS256", "old"), claims()), merged, kNow).ok());
  EXPECT_EQ(verify_error(sign_rs256(old_key.get(), header("RS256", "other"), claims()), merged),
            JwtError::BadSignature);
}

TEST(Jwt, JwksWithEveryKeyType) {
  const Pkey rsa = rsa_key();
  const Pkey ec = ec_key();
  json secret = {{"kty", "oct"}, {"kid", "hmac"}, {"alg", "HS256"}, {"k", b64url("shared")}};
  json rsa_entry = rsa_jwk(rsa.get(), "rsa");
  rsa_entry["use"] = "sig";
  rsa_entry["alg"] = "RS256";
  json ec_entry = ec_jwk(ec.get(), "ec");
  ec_entry["key_ops"] = {"verify"};
  std::vector<std::string> skipped;
  const JwtKeySet keys = jwks(json::array({secret, rsa_entry, ec_entry}), &skipped);
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_TRUE(skipped.empty());
  EXPECT_TRUE(verify_jwt(sign_hs256("shared", header("HS256", "hmac"), claims()), keys, kNow).ok());
  EXPECT_TRUE(verify_jwt(sign_rs256(rsa.get(), header("RS256", "rsa"), claims()), keys, kNow).ok());
  EXPECT_TRUE(verify_jwt(sign_es256(ec.get(), header("ES256", "ec"), claims()), keys, kNow).ok());
  // A kid naming a key of another type finds nothing.
  EXPECT_EQ(verify_error(sign_es256(ec.get(), header("ES256", "rsa"), claims()), keys),
            JwtError::NoKey);
}

TEST(Jwt, JwksSkipsKeysThatCannotVerify) {
  const Pkey rsa = rsa_key();
  const Pkey ec = ec_key();
  json enc = rsa_jwk(rsa.get(), "enc");
  enc["use"] = "enc";
  json rs512 = rsa_jwk(rsa.get(), "rs512");
  rs512["alg"] = "RS512";
  json sign_only = ec_jwk(ec.get(), "sign-only");
  sign_only["key_ops"] = {"sign"};
  json p384 = ec_jwk(ec_key("P-384").get(), "p384");
  p384["crv"] = "P-384";
  json off_curve = ec_jwk(ec.get(), "off-curve");
  std::string y = *core::base64url_decode(off_curve["y"].get<std::string>());
  y[31] = static_cast<char>(y[31] ^ 1);
  off_curve["y"] = b64url(y);
  json short_x = ec_jwk(ec.get(), "short-x");
  short_x["x"] = b64url(core::base64url_decode(short_x["x"].get<std::string>())->substr(1));
  json bad_n = rsa_jwk(rsa.get(), "bad-n");
  bad_n["n"] = "not base64url!";
  json padded = rsa_jwk(rsa.get(), "padded");
  padded["e"] = "AQAB=";
  const json small = rsa_jwk(rsa_key(1024).get(), "small");
  const json okp = {
      {"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}};
  const json no_kty = {{"k", "abc"}};
  json numeric_kid = rsa_jwk(rsa.get(), nullptr);
  numeric_kid["kid"] = 7;
  const json empty_k = {{"kty", "oct"}, {"k", ""}};
  const json good = ec_jwk(ec.get(), "good");

  std::vector<std::string> skipped;
  const JwtKeySet keys =
      jwks(json::array({enc, rs512, sign_only, p384, off_curve, short_x, bad_n, padded, small, okp,
                        no_kty, numeric_kid, empty_k, "x", good}),
           &skipped);
  EXPECT_EQ(keys.size(), 1u);
  ASSERT_EQ(skipped.size(), 14u);
  EXPECT_EQ(skipped[0], "key 0 (kid 'enc'): \"use\" is 'enc', not 'sig'");
  EXPECT_EQ(skipped[1],
            "key 1 (kid 'rs512'): \"alg\" 'RS512' (this RSA key could serve only RS256)");
  EXPECT_EQ(skipped[2], "key 2 (kid 'sign-only'): \"key_ops\" does not hold \"verify\"");
  EXPECT_EQ(skipped[3], "key 3 (kid 'p384'): curve 'P-384' (ES256 needs P-256)");
  EXPECT_EQ(skipped[4], "key 4 (kid 'off-curve'): x and y are not a point on P-256");
  EXPECT_EQ(skipped[5], "key 5 (kid 'short-x'): x and y must be 32 bytes each");
  EXPECT_EQ(skipped[6], "key 6 (kid 'bad-n'): \"n\" is missing or not base64url");
  EXPECT_EQ(skipped[7], "key 7 (kid 'padded'): \"e\" is missing or not base64url");
  EXPECT_EQ(skipped[8], "key 8 (kid 'small'): an RSA key of 1024 bits (RS256 needs 2048 or more)");
  EXPECT_EQ(skipped[9], "key 9: key type 'OKP' (RSA, EC or oct expected)");
  EXPECT_EQ(skipped[10], "key 10: no \"kty\"");
  EXPECT_EQ(skipped[11], "key 11: \"kid\" is not a string");
  EXPECT_EQ(skipped[12], "key 12: \"k\" is missing or not base64url");
  EXPECT_EQ(skipped[13], "key 13: not a JSON object");
  EXPECT_TRUE(verify_jwt(sign_es256(ec.get(), header("ES256", "good"), claims()), keys, kNow).ok());
  // The skipped key with the same material but another kid is not there.
  EXPECT_EQ(verify_error(sign_es256(ec.get(), header("ES256", "sign-only"), claims()), keys),
            JwtError::NoKey);
}

TEST(Jwt, JwksDocumentErrors) {
  std::string error;
  EXPECT_FALSE(JwtKeySet::from_jwks("not json", error));
  EXPECT_EQ(error, "not JSON (or nested more than 64 levels deep)");
  EXPECT_FALSE(JwtKeySet::from_jwks("{}", error));
  EXPECT_EQ(error, "no \"keys\" array");
  EXPECT_FALSE(JwtKeySet::from_jwks(R"({"keys": {}})", error));
  EXPECT_EQ(error, "no \"keys\" array");
  EXPECT_FALSE(JwtKeySet::from_jwks(R"([{"kty": "oct", "k": "YQ"}])", error));
  EXPECT_FALSE(JwtKeySet::from_jwks(R"({"keys": []} trailing)", error));
  EXPECT_FALSE(JwtKeySet::from_jwks(std::string(100, '[') + std::string(100, ']'), error));
  // Empty is fine: an issuer between keys, or a set still to be fetched.
  const std::optional<JwtKeySet> empty = JwtKeySet::from_jwks(R"({"keys": []})", error);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(verify_error(sign_hs256("k", header("HS256"), claims()), *empty), JwtError::NoKey);
}

// Passwords must come out as NotAJwt, so the next authenticator sees them.
TEST(Jwt, PasswordsAreNotJwts) {
  const JwtKeySet keys = JwtKeySet::from_secret("k");
  const std::string long_password(70000, 'p');
  const std::string b64_non_json = b64url("hello") + ".x.y";
  const std::string json_without_alg = b64url(R"({"typ":"JWT"})") + "." + b64url("{}") + ".";
  const std::string json_array = b64url(R"(["alg"])") + "." + b64url("{}") + ".";
  const std::string padded = core::base64_encode(R"({"alg":"HS256"} )") + ".e30.";
  for (const std::string& password :
       {std::string(""), std::string("hunter2"), std::string("pass.word"), std::string("a.b.c"),
        std::string("..."), std::string("ey.ey.ey"), long_password, long_password + ".x.y",
        b64_non_json, json_without_alg, json_array, padded}) {
    const JwtVerdict v = verify_jwt(password, keys, kNow);
    EXPECT_EQ(v.error, JwtError::NotAJwt) << password.substr(0, 40);
    EXPECT_STREQ(to_string(v.error), "not_a_jwt");
  }
}

TEST(Jwt, MalformedTokens) {
  const JwtKeySet keys = JwtKeySet::from_secret("k");
  const std::string h = b64url(header("HS256").dump());
  const std::string good = sign_hs256("k", header("HS256"), claims());
  auto error_of = [&](const std::string& token) {
    const JwtVerdict v = verify_jwt(token, keys, kNow);
    EXPECT_FALSE(v.message.empty());
    return v.error;
  };
  EXPECT_EQ(error_of(h + "." + b64url("{}")), JwtError::Malformed);          // 2 segments
  EXPECT_EQ(error_of(good + ".x"), JwtError::Malformed);                     // 4 segments
  EXPECT_EQ(error_of(good + ".x.y"), JwtError::Malformed);                   // JWE-like
  EXPECT_EQ(error_of(h + "." + b64url("[1]") + ".x"), JwtError::Malformed);  // not object
  EXPECT_EQ(error_of(h + "." + b64url("{") + ".x"), JwtError::Malformed);    // not JSON
  EXPECT_EQ(error_of(h + ".e30=.x"), JwtError::Malformed);                   // padding
  EXPECT_EQ(error_of(h + "..x"), JwtError::Malformed);                       // empty
  EXPECT_EQ(error_of(with_segment(good, 2, "a+b/")), JwtError::Malformed);   // alphabet
  EXPECT_EQ(error_of(with_segment(good, 2, "abc=")), JwtError::Malformed);   // padding
  EXPECT_EQ(error_of(token_with({{"alg", 256}}, claims(), "x")), JwtError::Malformed);
  EXPECT_EQ(error_of(token_with({{"alg", "HS256"}, {"kid", 1}}, claims(), "x")),
            JwtError::Malformed);
  EXPECT_EQ(error_of(token_with({{"alg", "HS256"}, {"crit", {"exp"}}}, claims(), "x")),
            JwtError::Malformed);
  // Invalid UTF-8 in the payload.
  EXPECT_EQ(error_of(h + "." + b64url("{\"sub\":\"\xff\"}") + ".x"), JwtError::Malformed);
  // Over 16 KiB.
  json big = claims();
  big["pad"] = std::string(16 * 1024, 'x');
  const JwtVerdict oversize = verify_jwt(sign_hs256("k", header("HS256"), big), keys, kNow);
  EXPECT_EQ(oversize.error, JwtError::Malformed);
  EXPECT_NE(oversize.message.find("at most 16384"), std::string::npos) << oversize.message;
  // Deep nesting is refused before the JSON parser sees it; inside a string it does not count.
  const std::string deep = "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(error_of(h + "." + b64url(deep) + ".x"), JwtError::Malformed);
  const std::string shallow = "{\"a\":\"" + std::string(100, '[') + "\\\"{\"}";
  EXPECT_EQ(verify_error(sign_hs256("k", header("HS256"), json::parse(shallow)), keys),
            JwtError::None);
  json nested = json::array();
  for (int i = 0; i < 62; ++i)
    nested = json::array({nested});
  EXPECT_EQ(verify_error(sign_hs256("k", header("HS256"), {{"n", nested}}), keys), JwtError::None);
  EXPECT_STREQ(to_string(JwtError::Malformed), "malformed");
}

TEST(Jwt, ParseJwtTakesTheTokenApart) {
  const std::string token = sign_hs256("k", header("HS256", "key-1"), claims());
  JwtError error = JwtError::None;
  std::string message;
  const std::optional<ParsedJwt> parsed = parse_jwt(token, error, message);
  ASSERT_TRUE(parsed) << message;
  EXPECT_EQ(parsed->alg, "HS256");
  EXPECT_EQ(parsed->kid, "key-1");
  EXPECT_EQ(parsed->header["typ"], "JWT");
  EXPECT_EQ(parsed->payload["sub"], "alice");
  EXPECT_EQ(parsed->signing_input, token.substr(0, token.rfind('.')));
  EXPECT_EQ(parsed->signature, hmac_sha256("k", parsed->signing_input));
  EXPECT_FALSE(parse_jwt("password", error, message));
  EXPECT_EQ(error, JwtError::NotAJwt);
}

TEST(Jwt, PemKeysAndCertificates) {
  const Pkey rsa = rsa_key();
  const Pkey ec = ec_key();
  const std::string rs_token = sign_rs256(rsa.get(), header("RS256"), claims());
  const std::string es_token = sign_es256(ec.get(), header("ES256"), claims());

  const std::string pkcs1 = pkcs1_public_pem(rsa.get());
  ASSERT_NE(pkcs1.find("BEGIN RSA PUBLIC KEY"), std::string::npos) << pkcs1;
  EXPECT_TRUE(verify_jwt(rs_token, JwtKeySet::from_pem(pkcs1, "pkcs1.pem"), kNow).ok());

  const std::string rsa_cert = certificate_pem(rsa.get());
  EXPECT_TRUE(verify_jwt(rs_token, JwtKeySet::from_pem(rsa_cert, "rsa.crt"), kNow).ok());
  const std::string ec_cert = certificate_pem(ec.get());
  EXPECT_TRUE(verify_jwt(es_token, JwtKeySet::from_pem(ec_cert, "ec.crt"), kNow).ok());
  // A certificate after its private key (a server's combined file): the key is never read.
  EXPECT_TRUE(
      verify_jwt(es_token, JwtKeySet::from_pem(private_pem(ec.get()) + ec_cert, "both.pem"), kNow)
          .ok());

  // From a file, and the path in errors.
  const std::string path = ::testing::TempDir() + "jwt_test_key.pem";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    const std::string pem = public_pem(ec.get());
    std::fwrite(pem.data(), 1, pem.size(), f);
    std::fclose(f);
  }
  EXPECT_TRUE(verify_jwt(es_token, JwtKeySet::load_pem_file(path), kNow).ok());
  std::remove(path.c_str());
  try {
    JwtKeySet::load_pem_file(path);
    ADD_FAILURE() << "no error for a missing file";
  } catch (const LoadError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
  }
}

TEST(Jwt, PemErrors) {
  EXPECT_EQ(load_error(""), "key.pem: no PEM block (expected a public key or a certificate)");
  EXPECT_EQ(load_error("hunter2"),
            "key.pem: no PEM block (expected a public key or a certificate)");
  EXPECT_EQ(load_error(private_pem(ec_key().get())),
            "key.pem: holds a PRIVATE KEY, not a public key (BEGIN PUBLIC KEY) or a certificate "
            "(BEGIN CERTIFICATE)");
  EXPECT_EQ(load_error("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            "key.pem: the PUBLIC KEY cannot be read");
  EXPECT_EQ(load_error("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            "key.pem: the certificate cannot be read");
  EXPECT_EQ(load_error(public_pem(rsa_key(1024).get())),
            "key.pem: an RSA key of 1024 bits (RS256 needs 2048 or more)");
  EXPECT_EQ(load_error(public_pem(ec_key("P-384").get())),
            "key.pem: an EC key on curve 'secp384r1' (ES256 needs P-256)");
  Pkey ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  EXPECT_EQ(load_error(public_pem(ed.get())),
            "key.pem: a key of type ED25519 (RSA for RS256 or EC P-256 for ES256 expected)");
  try {
    JwtKeySet::from_secret("");
    ADD_FAILURE() << "an empty secret was taken";
  } catch (const LoadError& e) {
    EXPECT_STREQ(e.what(), "the JWT secret is empty");
  }
}

// A failed verification leaves nothing on OpenSSL's per-thread error queue (which the TLS
// code on the same thread reads), and keeps what was there before.
TEST(Jwt, LeavesTheOpenSslErrorQueueAlone) {
  const Pkey rsa = rsa_key();
  const Pkey ec = ec_key();
  JwtKeySet keys = JwtKeySet::from_pem(public_pem(rsa.get()), "rsa.pem");
  keys.add(JwtKeySet::from_pem(public_pem(ec.get()), "ec.pem"));
  ERR_clear_error();
  EXPECT_EQ(verify_error(sign_rs256(rsa_key().get(), header("RS256"), claims()), keys),
            JwtError::BadSignature);
  EXPECT_EQ(
      verify_error(with_segment(sign_rs256(rsa.get(), header("RS256"), claims()), 2, "AAAA"), keys),
      JwtError::BadSignature);
  EXPECT_EQ(verify_error(sign_es256(ec_key().get(), header("ES256"), claims()), keys),
            JwtError::BadSignature);
  std::vector<std::string> skipped;
  json off_curve = ec_jwk(ec.get(), nullptr);
  off_curve["x"] = off_curve["y"];
  jwks(json::array({off_curve}), &skipped);
  EXPECT_EQ(skipped.size(), 1u);
  EXPECT_EQ(load_error("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            "key.pem: the PUBLIC KEY cannot be read");
  EXPECT_EQ(ERR_peek_error(), 0u);

  ERR_raise(ERR_LIB_USER, 42);
  EXPECT_EQ(verify_error(sign_rs256(rsa_key().get(), header("RS256"), claims()), keys),
            JwtError::BadSignature);
  EXPECT_EQ(ERR_GET_REASON(ERR_peek_last_error()), 42);
  ERR_clear_error();
}

TEST(Jwt, ErrorNames) {
  EXPECT_STREQ(to_string(JwtError::None), "ok");
  EXPECT_STREQ(to_string(JwtError::NotAJwt), "not_a_jwt");
  EXPECT_STREQ(to_string(JwtError::Malformed), "malformed");
  EXPECT_STREQ(to_string(JwtError::UnsupportedAlgorithm), "unsupported_algorithm");
  EXPECT_STREQ(to_string(JwtError::NoKey), "no_key");
  EXPECT_STREQ(to_string(JwtError::BadSignature), "bad_signature");
  EXPECT_STREQ(to_string(JwtError::Expired), "expired");
  EXPECT_STREQ(to_string(JwtError::NotYetValid), "not_yet_valid");
}

// Tokens and keys made by PyJWT 2.6 (python3-jwt, cryptography 38), so both sides of the
// encoding are not this file's own.
constexpr std::string_view kPyJwks =
    R"({"keys": [{"kty": "RSA", "key_ops": ["verify"], "n": "6mEqIe02Kfw51c8aXOpg-6Jl_ICnJv5C0B_TtTVXhGl2YAMj97OALUT_iMh5SWfb539ySHNMLxTVLmrZXralP34pnC3aZriJ_LPo1-iWJ9GMZ_ppTYJu1rmq6oTI0DkGZU8PDCghLl6iMWcAH_RHcb3WuHqbAt2AyQF9HEi6HtgyoQsN4WJvvSOJN0-p3PpKuIQd72izLYiHej_FtQd1OXZTvhb8BSaDse98Yi-PzuxZuw6qzCC1l2vtsev2_JVgYSrHdx0fYUbuS2_Eg2IxBSrPvCfJCryJTmIQ5B_svzg68z8e91TSiUyYE_1uDU2Yy50nqDFTCRWDjpY3RhNf9Q", "e": "AQAB", "kid": "py-rsa", "use": "sig"}, )"
    R"({"kty": "EC", "crv": "P-256", "x": "_3GT4yBGv5T4wKIiaiDQcWE0svtE9M_gsq2nt5L3Ags", "y": "pj4mL-4LUiXmAtUVRp9ugsIUEu-a0unjHqXdp9XMd4s", "kid": "py-ec"}]})";
constexpr std::string_view kPyRs256 =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InB5LXJzYSIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJweWp3dC11c2VyIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE1MDAwMDAwMDAsImFjbCI6eyJwdWIiOlsid"
    "C8jIl19fQ."
    "ZwyoW_VS6v9xRUJ5s1EwnwbQbbSWGA5DhjDtDn_ScWKra_DBCmcvvIY7zMXYNQqZTxuXwyEPVoiSzSGhYt0poRPEmpfrx"
    "lWnWiryfiO8MKcM89ywM5rPrKcGhh8vE-3OFgRkfSvvju3BHqN3Ksg8bM9szOxm94i2yioesFGF9ndHEfeTpQhHZ3QjOv"
    "UzbxSmOfJDi57C6a1vzFrZZLP6b-7aG0_LwJt8ijUzCKrETmmYcWLZi6_hxaDDoerhgFyttDHxeK9GnZyvlDmM4tQ_nEp"
    "IBfA_VeF9LV4aJY0kitpkWu2daddaM-nqUP0q8U4gGeYOymMpdkxEj6FwBbMMtQ";
constexpr std::string_view kPyEs256 =
    "eyJhbGciOiJFUzI1NiIsImtpZCI6InB5LWVjIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJweWp3dC11c2VyIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE1MDAwMDAwMDAsImFjbCI6eyJwdWIiOlsid"
    "C8jIl19fQ."
    "dPiiNdV4SR7wmHY58XLUd8KwZLDtkhx2tQh-vdOtd1OMdtCIQbCNGwvfJhw1h-TXmFji64fQPHwkJGtH73bhew";
constexpr std::string_view kPyHs256 =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJweWp3dC11c2VyIiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE1MDAwMDAwMDAsImFjbCI6eyJwdWIiOlsid"
    "C8jIl19fQ.W5s1Ulf0-tQUB1KPRw9oJXV29HcLZT5UzejEJ7y5yd0";

TEST(Jwt, VerifiesPyJwtTokens) {
  std::string error;
  const std::optional<JwtKeySet> keys = JwtKeySet::from_jwks(kPyJwks, error);
  ASSERT_TRUE(keys) << error;
  ASSERT_EQ(keys->size(), 2u);
  for (std::string_view token : {kPyRs256, kPyEs256}) {
    const JwtVerdict v = verify_jwt(token, *keys, kNow);
    ASSERT_TRUE(v.ok()) << v.message;
    EXPECT_EQ(v.claims["sub"], "pyjwt-user");
    EXPECT_EQ(v.expires_at, 2'000'000'000);
    EXPECT_EQ(verify_error(token, *keys, 1'400'000'000), JwtError::NotYetValid);
    EXPECT_EQ(verify_error(token, *keys, 2'000'000'000), JwtError::Expired);
  }
  EXPECT_TRUE(verify_jwt(kPyHs256, JwtKeySet::from_secret("py-secret"), kNow).ok());
  EXPECT_EQ(verify_error(kPyHs256, JwtKeySet::from_secret("py-secreT")), JwtError::BadSignature);
  // An HS256 token finds no key among RSA and EC keys.
  EXPECT_EQ(verify_error(kPyHs256, *keys), JwtError::NoKey);
}

}  // namespace
}  // namespace starling::auth
