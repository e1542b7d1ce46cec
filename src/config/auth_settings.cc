#include "config/auth_settings.h"

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

const std::vector<Field<AuthSettings>>& auth_fields() {
  using A = AuthSettings;
  // Read at start and on SIGHUP (by the caller of reload_into).
  static const std::vector<Field<A>> fields = {
      file_field("password_file", &A::password_file),
      file_field("acl_file", &A::acl_file),
  };
  return fields;
}

}  // namespace

Field<Config> auth_section() {
  return section("auth", &Config::auth, auth_fields());
}

}  // namespace starling::config
