// [auth]: who may connect and what they may do.
#pragma once

#include <string>

namespace starling::config {

struct AuthSettings {
  std::string password_file;  // mosquitto_passwd format ($7$, $6$) or starling passwd --scram
  std::string acl_file;       // Mosquitto's acl_file format
  bool operator==(const AuthSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [auth] section, for the loader (config.cc).
Field<Config> auth_section();

}  // namespace starling::config
