#include "broker/access_control.h"

#include <fstream>
#include <sstream>

namespace starling::broker {

namespace {

// [auth.jwt]'s own keys: the shared secret (HS256) and the PEM key file (RS256, ES256).
std::shared_ptr<const auth::JwtKeySet> config_keys(const config::JwtSettings& jwt) {
  if (!jwt.enabled()) return nullptr;
  auth::JwtKeySet keys;
  std::string secret = jwt.secret;
  if (!jwt.secret_file.empty()) {
    std::ifstream in(jwt.secret_file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw auth::LoadError(jwt.secret_file + ": cannot be read");
    secret = text.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
      secret.pop_back();
    if (secret.empty()) throw auth::LoadError(jwt.secret_file + ": the secret is empty");
  }
  if (!secret.empty()) keys.add(auth::JwtKeySet::from_secret(std::move(secret)));
  if (!jwt.public_key_file.empty()) keys.add(auth::JwtKeySet::load_pem_file(jwt.public_key_file));
  return std::make_shared<const auth::JwtKeySet>(std::move(keys));
}

}  // namespace

void AccessControl::load(const config::AuthSettings& settings) {
  // Every file is read before any is swapped in: a reload is all or nothing.
  std::shared_ptr<const auth::PasswordFile> passwords;
  std::shared_ptr<const auth::AclFile> acl;
  if (!settings.password_file.empty()) {
    passwords = std::make_shared<const auth::PasswordFile>(
        auth::PasswordFile::load(settings.password_file));
  }
  if (!settings.acl_file.empty()) {
    acl = std::make_shared<const auth::AclFile>(auth::AclFile::load(settings.acl_file));
  }
  std::shared_ptr<const auth::JwtKeySet> keys = config_keys(settings.jwt);
  std::lock_guard lock(mutex_);
  passwords_ = std::move(passwords);
  acl_ = std::move(acl);
  config_keys_ = std::move(keys);
  merge_keys_locked();
}

void AccessControl::set_jwks_keys(const auth::JwtKeySet& jwks) {
  auto keys = std::make_shared<const auth::JwtKeySet>(jwks);
  std::lock_guard lock(mutex_);
  jwks_keys_ = std::move(keys);
  merge_keys_locked();
}

void AccessControl::merge_keys_locked() {
  if (!jwks_keys_) {
    jwt_keys_ = config_keys_;
    return;
  }
  auth::JwtKeySet merged;
  if (config_keys_) merged.add(*config_keys_);
  merged.add(*jwks_keys_);
  jwt_keys_ = std::make_shared<const auth::JwtKeySet>(std::move(merged));
}

std::shared_ptr<const auth::PasswordFile> AccessControl::passwords() const {
  std::lock_guard lock(mutex_);
  return passwords_;
}

std::shared_ptr<const auth::AclFile> AccessControl::acl() const {
  std::lock_guard lock(mutex_);
  return acl_;
}

std::shared_ptr<const auth::JwtKeySet> AccessControl::jwt_keys() const {
  std::lock_guard lock(mutex_);
  return jwt_keys_;
}

}  // namespace starling::broker
