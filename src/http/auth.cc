#include "http/auth.h"

#include <algorithm>
#include <string_view>

namespace starling::http {

namespace {

const char* scope_name(Scope s) {
  switch (s) {
    case Scope::Read:
      return "read";
    case Scope::Publish:
      return "publish";
    case Scope::Admin:
      return "admin";
  }
  return "";
}

// Compares without an early exit, so the time taken does not tell how much of a guess was right.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(b.size(), 1)]);
  return diff == 0 && !b.empty();
}

Response unauthorized(std::string_view code, std::string_view message) {
  Response r = json_error(401, code, message);
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"starling\"");
  return r;
}

// The configured token the request's Authorization header presents; null (and why, in
// *problem) when there is none or it is not Bearer or unknown.
const config::ApiToken* presented_token(const Request& request,
                                        const config::HttpSettings& settings,
                                        std::optional<Response>* problem) {
  const std::string* header = request.header("authorization");
  if (header == nullptr) {
    *problem = unauthorized("unauthorized", "missing bearer token");
    return nullptr;
  }
  std::string_view value = *header;
  constexpr std::string_view kBearer = "bearer ";
  bool is_bearer = value.size() > kBearer.size() &&
                   std::equal(kBearer.begin(), kBearer.end(), value.begin(), [](char k, char c) {
                     return k == (c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
                   });
  if (!is_bearer) {
    *problem = unauthorized("unauthorized", "the Authorization header must be Bearer");
    return nullptr;
  }
  std::string_view presented = value.substr(kBearer.size());
  while (!presented.empty() && presented.front() == ' ')
    presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ')
    presented.remove_suffix(1);

  const config::ApiToken* match = nullptr;
  for (const auto& t : settings.tokens) {
    if (same_secret(presented, t.token)) match = &t;
  }
  if (match == nullptr) *problem = unauthorized("invalid_token", "unknown bearer token");
  return match;
}

}  // namespace

std::vector<std::string> granted_scopes(const Request& request, bool loopback,
                                        const config::HttpSettings& settings) {
  if (settings.tokens.empty()) {
    if (loopback) return {"read", "publish", "admin"};
    return {};
  }
  std::optional<Response> problem;
  const config::ApiToken* token = presented_token(request, settings, &problem);
  return token ? token->scopes : std::vector<std::string>{};
}

std::optional<Response> authorize(const Request& request, bool loopback,
                                  const config::HttpSettings& settings, Scope needed) {
  if (settings.tokens.empty()) {
    if (loopback) return std::nullopt;
    return json_error(403, "forbidden",
                      "no API tokens are configured: the API answers only on loopback");
  }
  std::optional<Response> problem;
  const config::ApiToken* match = presented_token(request, settings, &problem);
  if (match == nullptr) return problem;
  auto has = [&](std::string_view scope) {
    return std::find(match->scopes.begin(), match->scopes.end(), scope) != match->scopes.end();
  };
  if (has("admin") || has(scope_name(needed))) return std::nullopt;
  return json_error(403, "insufficient_scope",
                    std::string("this token lacks the \"") + scope_name(needed) + "\" scope");
}

}  // namespace starling::http
