#include "broker/access_control.h"

namespace starling::broker {

void AccessControl::load(const config::AuthSettings& settings) {
  // Both files are read before either is swapped in: a reload is all or nothing.
  std::shared_ptr<const auth::PasswordFile> passwords;
  std::shared_ptr<const auth::AclFile> acl;
  if (!settings.password_file.empty()) {
    passwords = std::make_shared<const auth::PasswordFile>(
        auth::PasswordFile::load(settings.password_file));
  }
  if (!settings.acl_file.empty()) {
    acl = std::make_shared<const auth::AclFile>(auth::AclFile::load(settings.acl_file));
  }
  std::lock_guard lock(mutex_);
  passwords_ = std::move(passwords);
  acl_ = std::move(acl);
}

std::shared_ptr<const auth::PasswordFile> AccessControl::passwords() const {
  std::lock_guard lock(mutex_);
  return passwords_;
}

std::shared_ptr<const auth::AclFile> AccessControl::acl() const {
  std::lock_guard lock(mutex_);
  return acl_;
}

}  // namespace starling::broker
