// The password file and the ACL file in force ([auth]). Loaded at start (a bad file stops the
// broker with file:line: reason) and again on SIGHUP (a bad file keeps the current one).
// Immutable snapshots, read by any thread; each CONNECT takes the ones of its moment.
#pragma once

#include <memory>
#include <mutex>

#include "auth/acl.h"
#include "auth/password_file.h"
#include "config/config.h"

namespace starling::broker {

class AccessControl {
 public:
  // Throws auth::LoadError (what(): "file:line: reason").
  void load(const config::AuthSettings& settings);

  // Null when [auth] has no such file.
  std::shared_ptr<const auth::PasswordFile> passwords() const;
  std::shared_ptr<const auth::AclFile> acl() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const auth::PasswordFile> passwords_;
  std::shared_ptr<const auth::AclFile> acl_;
};

}  // namespace starling::broker
