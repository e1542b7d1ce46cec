#include "broker/authenticator.h"

#include <spdlog/spdlog.h>

#include "metrics/counters.h"

namespace starling::broker {

namespace rc = mqtt::reason;
using metrics::Counter;

Authenticator::~Authenticator() = default;

Authenticator::Verdict Authenticator::refuse(uint8_t reason_code, std::string reason) {
  Verdict v;
  v.outcome = Outcome::Refused;
  v.reason_code = reason_code;
  v.reason = std::move(reason);
  return v;
}

Authenticator::Verdict Authenticator::connect(const mqtt::Connect& c, const ClientOrigin& origin) {
  auto passwords = access_.passwords();
  const std::string_view method = c.properties.authentication_method
                                      ? std::string_view(*c.properties.authentication_method)
                                      : std::string_view();
  scram_method_ = false;
  if (!method.empty()) {
    // MQTT 5 enhanced authentication: SCRAM-SHA-256 against the password file's SCRAM entries.
    if (method != kScramMethod || !passwords) {
      metrics::add(Counter::AuthMethodRefused);
      return refuse(rc::BadAuthenticationMethod,
                    passwords ? "authentication method not supported (SCRAM-SHA-256 is)"
                              : "enhanced authentication needs [auth] password_file");
    }
    scram_method_ = true;
    Verdict v;
    if (!start_scram(std::move(passwords), c.properties.authentication_data.value_or(""), v)) {
      spdlog::info("connect from {} refused: SCRAM: {}", origin.peer, v.reason);
      return refuse(rc::NotAuthorized, "SCRAM-SHA-256 exchange failed");
    }
    return v;
  }

  if (origin.certificate_username) {
    // A certificate verified against the listener's CA is the proof; a password is not asked.
    username_ = core::InlineString(*origin.certificate_username);
    metrics::add(Counter::AuthSucceeded);
  } else if (c.username && passwords) {
    if (!c.password || !passwords->check(*c.username, *c.password)) {
      metrics::add(Counter::AuthBadCredentials);
      spdlog::info("connect from {} refused: bad user name or password for '{}'", origin.peer,
                   *c.username);
      return refuse(rc::BadUserNameOrPassword, "bad user name or password");
    }
    metrics::add(Counter::AuthSucceeded);
    username_ = core::InlineString(*c.username);
  } else {
    // No proven identity: no user name, or one that nothing can check (no password file).
    // Where anonymous clients are refused, so is such a name: taking it would let a client
    // claim any user and that user's ACL rules. Elsewhere it is taken as given (as Mosquitto).
    const config::Listener* listener = nullptr;
    for (const auto& l : settings_.listeners) {
      if (l.name == origin.listener) listener = &l;
    }
    const bool anonymous_ok =
        listener ? settings_.allows_anonymous(*listener) : settings_.auth.password_file.empty();
    if (!anonymous_ok) {
      metrics::add(Counter::AuthAnonymousRefused);
      const char* why = c.username ? "user name cannot be verified (no password file)"
                                   : "anonymous clients are not allowed";
      spdlog::info("connect from {} refused on {}: {}", origin.peer, origin.listener, why);
      return refuse(rc::NotAuthorized, why);
    }
    if (c.username) username_ = core::InlineString(*c.username);
  }
  return Verdict{Outcome::Accepted, rc::Success, {}, {}};
}

Authenticator::Verdict Authenticator::continue_connect(std::string_view data,
                                                       std::string_view peer) {
  auth::ScramStep step = scram_->finish(data);
  scram_.reset();
  if (!step.ok()) {
    metrics::add(Counter::AuthBadCredentials);
    spdlog::info("connect from {} refused: SCRAM: {}", peer, step.error);
    return refuse(step.failure == auth::ScramFailure::BadCredentials ? rc::BadUserNameOrPassword
                                                                     : rc::NotAuthorized,
                  "SCRAM-SHA-256 authentication failed");
  }
  metrics::add(Counter::AuthSucceeded);
  username_ = core::InlineString(step.username);
  return Verdict{Outcome::Accepted, rc::Success, {}, std::move(step.message)};
}

Authenticator::Verdict Authenticator::start_reauthentication(std::string_view data) {
  auto passwords = access_.passwords();
  if (!passwords) {
    metrics::add(Counter::AuthBadCredentials);
    return refuse(rc::NotAuthorized, "no password file");
  }
  Verdict v;
  start_scram(std::move(passwords), data, v);
  return v;
}

Authenticator::Verdict Authenticator::continue_reauthentication(std::string_view data) {
  auth::ScramStep step = scram_->finish(data);
  scram_.reset();
  if (!step.ok()) {
    metrics::add(Counter::AuthBadCredentials);
    return refuse(rc::NotAuthorized, step.error);
  }
  // The session, its subscriptions and its ACL belong to the user who connected.
  if (step.username != username_.view()) {
    metrics::add(Counter::AuthBadCredentials);
    return refuse(rc::NotAuthorized, "a different user name");
  }
  metrics::add(Counter::AuthSucceeded);
  return Verdict{Outcome::Accepted, rc::Success, {}, std::move(step.message)};
}

bool Authenticator::start_scram(std::shared_ptr<const auth::PasswordFile> passwords,
                                std::string_view client_first, Verdict& verdict) {
  // The exchange holds the file it started with: a reload meanwhile does not change the keys.
  scram_ = std::make_unique<auth::ScramServer>(
      [passwords = std::move(passwords)](std::string_view user) {
        return passwords->scram_credentials(user);
      });
  auth::ScramStep step = scram_->start(client_first);
  if (!step.ok()) {
    scram_.reset();
    metrics::add(Counter::AuthBadCredentials);
    verdict = refuse(rc::NotAuthorized, std::move(step.error));
    return false;
  }
  verdict = Verdict{Outcome::Continue, rc::ContinueAuthentication, {}, std::move(step.message)};
  return true;
}

std::shared_ptr<const auth::ClientAcl> Authenticator::compile_acl(
    std::string_view client_id) const {
  auto acl_file = access_.acl();
  if (!acl_file) return nullptr;
  std::optional<std::string_view> user;
  if (!username_.empty()) user = username_.view();
  return std::make_shared<const auth::ClientAcl>(acl_file->compile_for(user, client_id));
}

}  // namespace starling::broker
