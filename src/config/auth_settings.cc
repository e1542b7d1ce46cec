#include "config/auth_settings.h"

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

constexpr std::string_view kOnError[] = {"deny", "ignore"};
constexpr std::string_view kTokenFrom[] = {"password", "username"};

const std::vector<Field<HttpAuthSettings>>& http_fields() {
  using H = HttpAuthSettings;
  static const std::vector<Field<H>> fields = {
      url_field("connect_url", &H::connect_url),
      url_field("acl_url", &H::acl_url),
      integer_field("timeout_ms", &H::timeout_ms, 10, 600000),
      integer_field("pool_size", &H::pool_size, 1, 1024),
      integer_field("max_pending", &H::max_pending, 1, 10000000),
      integer_field("cache_ttl_s", &H::cache_ttl_s, 0, 86400 * 7),
      integer_field("cache_max_entries", &H::cache_max_entries, 1, 100000000),
      one_of_field("on_error", &H::on_error, kOnError),
      file_field("ca_file", &H::ca_file),
      field("headers", &H::headers, &Reader::header_lines),
  };
  return fields;
}

const std::vector<Field<JwtSettings>>& jwt_fields() {
  using J = JwtSettings;
  static const std::vector<Field<J>> fields = {
      string_field("secret", &J::secret),
      file_field("secret_file", &J::secret_file),
      file_field("public_key_file", &J::public_key_file),
      url_field("jwks_url", &J::jwks_url),
      integer_field("jwks_refresh_s", &J::jwks_refresh_s, 1, 86400 * 7),
      one_of_field("from", &J::from, kTokenFrom),
      string_field("username_claim", &J::username_claim),
      string_field("acl_claim", &J::acl_claim),
      integer_field("leeway_s", &J::leeway_s, 0, 86400),
      bool_field("disconnect_on_expiry", &J::disconnect_on_expiry),
  };
  return fields;
}

void read_jwt(const Reader& r, JwtSettings& jwt, const toml::node& n, const std::string& path) {
  r.read_table<JwtSettings>(jwt, r.table(n, path), path, jwt_fields());
  if (!jwt.secret.empty() && !jwt.secret_file.empty()) {
    r.fail(n, path + ": secret and secret_file are two ways of saying one thing: keep one");
  }
  if (!jwt.enabled()) {
    r.fail(n, path + " needs a key: secret, secret_file, public_key_file or jwks_url");
  }
}

const std::vector<Field<AuthSettings>>& auth_fields() {
  using A = AuthSettings;
  // Read at start and on SIGHUP (by the caller of reload_into).
  static const std::vector<Field<A>> fields = {
      file_field("password_file", &A::password_file),
      file_field("acl_file", &A::acl_file),
      section("http", &A::http, http_fields()),
      {"jwt", [](const Reader& r, A& a, const toml::node& n,
                 const std::string& path) { read_jwt(r, a.jwt, n, path); }},
  };
  return fields;
}

}  // namespace

Field<Config> auth_section() {
  return section("auth", &Config::auth, auth_fields());
}

}  // namespace starling::config
