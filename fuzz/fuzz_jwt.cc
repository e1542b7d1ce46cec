// libFuzzer target for JWT verification and per-client rules (src/auth/jwt.h, client_rules.h).
// The input is a token for parse_jwt and for verify_jwt against a fixed HS256 secret; its text
// before the first blank line (or all of it) is also a JWKS document, whose keys then verify
// each line after the blank line, and a rules document for ClientRules, whose checks run on
// those lines as topics and filters. Broken invariants trap; nothing may throw.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth/client_rules.h"
#include "auth/crypto.h"
#include "auth/jwt.h"
#include "auth/topic_match.h"
#include "core/base64.h"
#include "fuzz_support.h"

namespace {

using namespace starling::auth;

constexpr int64_t kNow = 1'700'000'000;
constexpr std::string_view kSecret = "fuzz-secret";

using starling::fuzz::check;
using starling::fuzz::lines_of;

size_t dots_in(std::string_view text) {
  size_t dots = 0;
  for (char c : text)
    dots += c == '.';
  return dots;
}

const JwtKeySet& secret_keys() {
  static const JwtKeySet keys = JwtKeySet::from_secret(std::string(kSecret));
  return keys;
}

void fuzz_token(std::string_view token) {
  JwtError parse_error = JwtError::None;
  std::string message;
  const std::optional<ParsedJwt> parsed = parse_jwt(token, parse_error, message);
  const JwtVerdict verdict = verify_jwt(token, secret_keys(), kNow, 30);
  if (!parsed) {
    check(parse_error == JwtError::NotAJwt || parse_error == JwtError::Malformed);
    check(!message.empty());
    check(verdict.error == parse_error);
    // A password never looks broken: without a dot it is not a token at all.
    if (token.find('.') == std::string_view::npos) check(parse_error == JwtError::NotAJwt);
    return;
  }
  check(parsed->header.is_object() && parsed->payload.is_object());
  check(dots_in(token) == 2 && token.size() <= 16 * 1024);
  check(token.starts_with(parsed->signing_input) && token[parsed->signing_input.size()] == '.');
  check(parsed->header.contains("alg") && parsed->header["alg"] == parsed->alg);
  if (verdict.ok()) {
    // Only the secret's own MAC gets through.
    check(parsed->alg == "HS256");
    check(constant_time_equal(hmac_sha256(kSecret, parsed->signing_input), parsed->signature));
    check(verdict.claims == parsed->payload);
  }
  if (verdict.error == JwtError::Expired || verdict.error == JwtError::NotYetValid) {
    check(verdict.claims.is_object() && !verdict.message.empty());
  }
  if (verdict.error == JwtError::Expired) check(verdict.expires_at && *verdict.expires_at <= kNow);

  // The same header and claims signed with the secret: the signature now passes, so the
  // claims checks decide (or the alg does).
  const std::string input = starling::core::base64url_encode(parsed->header.dump()) + "." +
                            starling::core::base64url_encode(parsed->payload.dump());
  const std::string resigned =
      input + "." + starling::core::base64url_encode(hmac_sha256(kSecret, input));
  if (resigned.size() > 16 * 1024) return;
  const JwtVerdict again = verify_jwt(resigned, secret_keys(), kNow, 30);
  check(again.error != JwtError::NotAJwt && again.error != JwtError::BadSignature);
  if (parsed->alg == "HS256") {
    check(again.error != JwtError::NoKey && again.error != JwtError::UnsupportedAlgorithm);
  }
}

void fuzz_jwks(std::string_view document, const std::vector<std::string_view>& tokens) {
  std::string error;
  std::vector<std::string> skipped;
  const std::optional<JwtKeySet> keys = JwtKeySet::from_jwks(document, error, &skipped);
  if (!keys) {
    check(!error.empty());
    return;
  }
  for (const std::string& why : skipped)
    check(!why.empty());
  for (std::string_view token : tokens) {
    const JwtVerdict verdict = verify_jwt(token, *keys, kNow);
    if (keys->empty()) check(!verdict.ok());
  }
}

void fuzz_rules(std::string_view document, const std::vector<std::string_view>& probes) {
  nlohmann::json rules = nlohmann::json::parse(document.begin(), document.end(), nullptr, false);
  if (rules.is_discarded()) return;
  struct Client {
    std::string_view id;
    std::optional<std::string_view> username;
  };
  const Client clients[] = {{"dev1", "alice"}, {"a/b", std::nullopt}, {"#", "+"}};
  for (const Client& client : clients) {
    std::string error;
    const std::optional<ClientRules> parsed =
        ClientRules::from_json(rules, client.id, client.username, error);
    if (!parsed) {
      check(!error.empty());
      continue;
    }
    for (std::string_view probe : probes) {
      const std::optional<bool> subscribe = parsed->check_subscribe(probe);
      if (!valid_filter(probe)) check(subscribe == false || probe.starts_with("$share/"));
      for (uint8_t qos = 0; qos <= 2; ++qos) {
        (void)parsed->check_publish(probe, qos, false);
        (void)parsed->check_publish(probe, qos, true);
      }
    }
  }
}

// filters_overlap against the matcher: a topic both match proves an overlap, and a filter
// that covers another overlaps it.
void fuzz_overlap(const std::vector<std::string_view>& lines) {
  for (size_t i = 0; i + 2 < lines.size(); ++i) {
    const std::string_view a = lines[i], b = lines[i + 1], topic = lines[i + 2];
    if (!valid_filter(a) || !valid_filter(b)) continue;
    const bool overlap = filters_overlap(a, b);
    check(overlap == filters_overlap(b, a));
    check(filters_overlap(a, a));
    const TopicFilter fa(a), fb(b);
    if (fa.covers(fb)) check(overlap);
    if (topic.find_first_of("+#") == std::string_view::npos && !topic.empty() &&
        fa.matches(topic) && fb.matches(topic)) {
      check(overlap);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 20 * 1024) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t blank = input.find("\n\n");
  const std::string_view document = input.substr(0, blank);
  const std::vector<std::string_view> after = blank == std::string_view::npos
                                                  ? std::vector<std::string_view>{}
                                                  : lines_of(input.substr(blank + 2), 16);
  fuzz_token(input);
  for (std::string_view line : lines_of(input, 8))
    fuzz_token(line);
  fuzz_jwks(document, after);
  fuzz_rules(document, after);
  fuzz_overlap(lines_of(input, 64));
  return 0;
}
