#include "config/http_settings.h"

#include <algorithm>
#include <string_view>

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

constexpr std::string_view kTokenScopes[] = {"read", "publish", "admin"};
// Shorter tokens are too easy to guess for something that can publish or kick clients.
constexpr size_t kMinTokenLength = 16;

std::string read_token(const Reader& r, const toml::node& n, const std::string& path) {
  std::string token = r.string(n, path);
  if (token.size() < kMinTokenLength) {
    r.fail(n, path + " must be at least " + std::to_string(kMinTokenLength) + " characters long");
  }
  // It travels in an Authorization header: visible ASCII only.
  for (char c : token) {
    if (c <= 0x20 || c >= 0x7F) r.fail(n, path + " must be visible ASCII characters (no spaces)");
  }
  return token;
}

std::vector<std::string> read_scopes(const Reader& r, const toml::node& n,
                                     const std::string& path) {
  const auto* array = n.as_array();
  if (array == nullptr || array->empty()) {
    r.fail(n, path + " must be a non-empty array of scopes: " + join(kTokenScopes));
  }
  std::vector<std::string> scopes;
  for (const toml::node& item : *array) {
    std::string scope = r.one_of_strings(item, path, kTokenScopes);
    if (std::find(scopes.begin(), scopes.end(), scope) != scopes.end()) {
      r.fail(item, path + " lists " + quoted(scope) + " twice");
    }
    scopes.push_back(scope);
  }
  return scopes;
}

const std::vector<Field<ApiToken>>& token_fields() {
  static const std::vector<Field<ApiToken>> fields = {
      field("token", &ApiToken::token, read_token),
      field("scopes", &ApiToken::scopes, read_scopes),
  };
  return fields;
}

// [http.tokens.NAME] tables; both keys are required and no two tokens may be the same.
std::vector<ApiToken> read_tokens(const Reader& r, const toml::node& node,
                                  const std::string& path) {
  std::vector<ApiToken> tokens;
  r.named_tables(
      node, path, "token", "grafana",
      [&](const std::string& name, const toml::table& table, const std::string& token_path) {
        ApiToken t{name};
        r.read_table<ApiToken>(t, table, token_path, token_fields());
        const int table_line = line_of(table.source());
        if (!table.contains("token")) {
          r.fail(table_line, token_path + " needs a token, e.g. token = \"<random string>\"");
        }
        if (!table.contains("scopes")) {
          r.fail(table_line, token_path + " needs scopes, e.g. scopes = [\"read\", \"publish\"]");
        }
        for (const ApiToken& other : tokens) {
          if (other.token == t.token) {
            r.fail(*table.get("token"),
                   token_path + ".token is the same as " + path + "." + other.name + ".token");
          }
        }
        tokens.push_back(std::move(t));
      });
  return tokens;
}

const std::vector<Field<HttpSettings>>& http_fields() {
  using H = HttpSettings;
  static const std::vector<Field<H>> fields = {
      field("bind", &H::bind, &Reader::bind),
      bool_field("enabled", &H::enabled),
      // Up to the largest MQTT packet: a bigger body could not be published anyway.
      integer_field("max_body_bytes", &H::max_body_bytes, 1, 268435455),
      // http-parser's own limit is 80 KiB; ours must stay below it to be the one that answers.
      integer_field("max_header_bytes", &H::max_header_bytes, 1024, 65536),
      integer_field("idle_timeout_ms", &H::idle_timeout_ms, 100, 86400000),
      integer_field("request_timeout_ms", &H::request_timeout_ms, 100, 3600000),
      integer_field("max_connections", &H::max_connections),  // 0: no limit
      field("tokens", &H::tokens, read_tokens),
  };
  return fields;
}

}  // namespace

Field<Config> http_section() {
  return section("http", &Config::http, http_fields());
}

}  // namespace starling::config
