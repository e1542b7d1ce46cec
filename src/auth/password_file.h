// A Mosquitto password file (mosquitto_passwd's format), so a Mosquitto user migrates by
// pointing at the same file: one "username:hash" per line (see password_hash.h for the hash
// kinds), blank lines and lines starting with '#' ignored. The username is everything before
// the first ':'; trailing whitespace and CR are trimmed. Immutable after loading, so a reload
// can swap a shared_ptr<const PasswordFile>.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "auth/load_error.h"
#include "auth/password_hash.h"

namespace starling::auth {

class PasswordFile {
 public:
  // Throws LoadError "path:line: reason" (unknown hash kind, bad base64, missing ':', empty or
  // duplicate user, iteration count above kMaxHashIterations), or "path: reason" when the file
  // cannot be read.
  static PasswordFile load(const std::string& path);
  // The same from text; name stands for the path in messages.
  static PasswordFile parse(std::string_view text, std::string_view name);

  // Null for an unknown user.
  const PasswordHash* lookup(std::string_view username) const;
  // False for an unknown user or a wrong password. Costs one hash computation (up to
  // kMaxHashIterations rounds) for a known user; an unknown user answers at once, as with
  // Mosquitto, so timing can tell whether a user exists.
  bool check(std::string_view username, std::string_view password) const;
  // Only for a user whose hash is the $scram-sha-256$ kind.
  std::optional<ScramCredentials> scram_credentials(std::string_view username) const;

  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, PasswordHash, std::less<>> users_;
};

}  // namespace starling::auth
