// What decides who connects and what they may do ([auth]): the password file and the ACL file
// (loaded at start, where a bad file stops the broker with file:line: reason, and again on
// SIGHUP, where a bad file keeps the current one), the JWT keys ([auth.jwt]: from the config's
// secret or key file, and from the JWKS URL as src/hooks/jwks refreshes them), and the HTTP
// service ([auth.http], attached at start). Immutable snapshots, read by any thread; each
// CONNECT takes the ones of its moment.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "auth/acl.h"
#include "auth/jwt.h"
#include "auth/password_file.h"
#include "broker/external_auth.h"
#include "config/config.h"

namespace starling::broker {

class AccessControl {
 public:
  // Throws auth::LoadError (what(): "file:line: reason").
  void load(const config::AuthSettings& settings);

  // Null when [auth] has no such file.
  std::shared_ptr<const auth::PasswordFile> passwords() const;
  std::shared_ptr<const auth::AclFile> acl() const;
  // Null without [auth.jwt]; may be empty while a JWKS has not been fetched yet.
  std::shared_ptr<const auth::JwtKeySet> jwt_keys() const;
  // The keys of the last JWKS fetched (with the config's own keys, if any).
  void set_jwks_keys(const auth::JwtKeySet& keys);

  // Called when a token names a key we do not have (a JWKS rotation): the refresher fetches
  // again sooner. Set once at start.
  void set_unknown_key_handler(std::function<void()> handler) { unknown_key_ = std::move(handler); }
  void unknown_key() const {
    if (unknown_key_) unknown_key_();
  }

  // The [auth.http] service; null without one. Set once at start, before the listeners open.
  void set_external(ExternalAuth* external) { external_ = external; }
  ExternalAuth* external() const { return external_; }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const auth::PasswordFile> passwords_;
  std::shared_ptr<const auth::AclFile> acl_;
  std::shared_ptr<const auth::JwtKeySet> config_keys_;  // secret, secret_file, public_key_file
  std::shared_ptr<const auth::JwtKeySet> jwks_keys_;    // from the JWKS URL
  std::shared_ptr<const auth::JwtKeySet> jwt_keys_;     // both
  void merge_keys_locked();
  ExternalAuth* external_ = nullptr;
  std::function<void()> unknown_key_;
};

}  // namespace starling::broker
