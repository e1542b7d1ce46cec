#include "broker/authenticator.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "metrics/counters.h"

namespace starling::broker {

namespace rc = mqtt::reason;
using metrics::Counter;

Authenticator::~Authenticator() = default;

namespace {

void count_jwt(auth::JwtError error) {
  using E = auth::JwtError;
  switch (error) {
    case E::None:
      return metrics::add(Counter::JwtAccepted);
    case E::Expired:
      return metrics::add(Counter::JwtExpired);
    case E::NotYetValid:
      return metrics::add(Counter::JwtNotYetValid);
    case E::BadSignature:
      return metrics::add(Counter::JwtBadSignature);
    case E::NoKey:
      return metrics::add(Counter::JwtNoKey);
    default:
      return metrics::add(Counter::JwtMalformed);  // malformed, unsupported algorithm
  }
}

}  // namespace

Authenticator::Verdict Authenticator::refuse(uint8_t reason_code, std::string reason) {
  Verdict v;
  v.outcome = Outcome::Refused;
  v.reason_code = reason_code;
  v.reason = std::move(reason);
  return v;
}

Authenticator::Verdict Authenticator::accept(std::string_view username) {
  metrics::add(Counter::AuthSucceeded);
  username_ = core::InlineString(username);
  return Verdict{Outcome::Accepted, rc::Success, {}, {}};
}

Authenticator::Verdict Authenticator::connect(const mqtt::Connect& c, const ClientOrigin& origin,
                                              std::function<void(ConnectAnswer)> on_answer) {
  const std::string_view method = c.properties.authentication_method
                                      ? std::string_view(*c.properties.authentication_method)
                                      : std::string_view();
  scram_method_ = false;
  grant_.reset();
  if (!method.empty()) {
    // MQTT 5 enhanced authentication: SCRAM-SHA-256 against the password file's SCRAM entries.
    auto passwords = access_.passwords();
    if (method != kScramMethod || !passwords) {
      metrics::add(Counter::AuthMethodRefused);
      return refuse(rc::BadAuthenticationMethod,
                    passwords ? "authentication method not supported (SCRAM-SHA-256 is)"
                              : "enhanced authentication needs [auth] password_file");
    }
    scram_method_ = true;
    Verdict v;
    if (!start_scram(std::move(passwords), c.properties.authentication_data.value_or(""), v)) {
      spdlog::info("connect from {} refused: SCRAM: {}", origin.peer(), v.reason);
      return refuse(rc::NotAuthorized, "SCRAM-SHA-256 exchange failed");
    }
    return v;
  }

  // A certificate verified against the listener's CA is the proof; a password is not asked.
  if (origin.certificate_username) return accept(*origin.certificate_username);

  // A bridge's local session is configured, not a client to ask the token or the service about.
  if (origin.bridge) return check_files(c, origin);

  if (std::optional<Verdict> v = check_jwt(c, origin)) return std::move(*v);

  ExternalAuth* external = access_.external();
  if (external != nullptr && external->checks_connect()) {
    ConnectQuery q;
    q.client_id = c.client_id;
    q.username = c.username;
    q.password = c.password;
    q.peerhost = origin.address.host();
    q.proto_ver = c.version == mqtt::Version::V5 ? 5 : c.version == mqtt::Version::V31 ? 3 : 4;
    q.cert_common_name = origin.certificate_username;
    q.listener = std::string(origin.listener);
    if (std::optional<ConnectAnswer> cached = external->connect(q, std::move(on_answer))) {
      return resume_connect(c, origin, *cached);
    }
    Verdict v;
    v.outcome = Outcome::Pending;
    return v;
  }
  return check_files(c, origin);
}

Authenticator::Verdict Authenticator::resume_connect(const mqtt::Connect& c,
                                                     const ClientOrigin& origin,
                                                     const ConnectAnswer& answer) {
  Decision decision = answer.decision;
  if (decision == Decision::Failed) {
    // The service could not say: fail closed unless told otherwise (counted by the service).
    if (settings_.auth.http.on_error != "ignore") {
      spdlog::debug("connect from {} refused: the auth service did not answer: {}", origin.peer(),
                    answer.reason);
      return refuse(rc::ServerUnavailable, "the authentication service is unavailable");
    }
    decision = Decision::Ignore;
  }
  switch (decision) {
    case Decision::Allow:
      if (answer.superuser || answer.rules) {
        grant_ = std::make_unique<Grant>(Grant{answer.superuser, answer.rules, std::nullopt});
      }
      return accept(c.username ? std::string_view(*c.username) : std::string_view());
    case Decision::Deny:
      metrics::add(Counter::AuthBadCredentials);
      spdlog::info("connect from {} refused by the auth service (client '{}')", origin.peer(),
                   c.client_id);
      return refuse(rc::BadUserNameOrPassword, "refused by the authentication service");
    default:
      return check_files(c, origin);
  }
}

std::optional<Authenticator::Verdict> Authenticator::check_jwt(const mqtt::Connect& c,
                                                               const ClientOrigin& origin) {
  const config::JwtSettings& jwt = settings_.auth.jwt;
  if (!jwt.enabled()) return std::nullopt;
  const std::optional<std::string>& carrier = jwt.from == "username" ? c.username : c.password;
  if (!carrier) return std::nullopt;
  auto keys = access_.jwt_keys();
  if (!keys) return std::nullopt;
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auth::JwtVerdict v = auth::verify_jwt(*carrier, *keys, now, jwt.leeway_s);
  if (v.error == auth::JwtError::NotAJwt) return std::nullopt;  // a password: the next step
  count_jwt(v.error);
  if (v.error == auth::JwtError::NoKey) access_.unknown_key();
  if (!v.ok()) {
    spdlog::info("connect from {} refused: token: {}", origin.peer(), v.message);
    return refuse(rc::BadUserNameOrPassword, "invalid token");
  }
  // The user name: the claim's, or the CONNECT's when no claim is named.
  std::string username;
  if (!jwt.username_claim.empty()) {
    auto it = v.claims.find(jwt.username_claim);
    if (it == v.claims.end() || !it->is_string()) {
      return refuse(rc::BadUserNameOrPassword, "the token has no " + jwt.username_claim + " claim");
    }
    username = it->get<std::string>();
  } else if (c.username && jwt.from != "username") {
    username = *c.username;
  }
  auto grant = std::make_unique<Grant>();
  grant->expires_at = v.expires_at;
  if (!jwt.acl_claim.empty()) {
    if (auto it = v.claims.find(jwt.acl_claim); it != v.claims.end()) {
      std::string error;
      std::optional<std::string_view> user;
      if (!username.empty()) user = username;
      auto rules = auth::ClientRules::from_json(*it, c.client_id, user, error);
      if (!rules) return refuse(rc::BadUserNameOrPassword, "the token's rules: " + error);
      grant->rules = std::make_shared<const auth::ClientRules>(std::move(*rules));
    }
  }
  if (auto it = v.claims.find("superuser"); it != v.claims.end() && it->is_boolean()) {
    grant->superuser = it->get<bool>();
  }
  grant_ = std::move(grant);
  return accept(username);
}

Authenticator::Verdict Authenticator::check_files(const mqtt::Connect& c,
                                                  const ClientOrigin& origin) {
  auto passwords = access_.passwords();
  if (c.username && passwords) {
    if (!c.password || !passwords->check(*c.username, *c.password)) {
      metrics::add(Counter::AuthBadCredentials);
      spdlog::info("connect from {} refused: bad user name or password for '{}'", origin.peer(),
                   *c.username);
      return refuse(rc::BadUserNameOrPassword, "bad user name or password");
    }
    return accept(*c.username);
  }
  // No proven identity: no user name, or one that nothing can check (no password file).
  // Where anonymous clients are refused, so is such a name: taking it would let a client
  // claim any user and that user's ACL rules. Elsewhere it is taken as given (as Mosquitto).
  const config::Listener* listener = nullptr;
  for (const auto& l : settings_.listeners) {
    if (l.name == origin.listener) listener = &l;
  }
  const bool anonymous_ok =
      listener ? settings_.allows_anonymous(*listener) : !settings_.auth.checks_identity();
  if (!anonymous_ok) {
    metrics::add(Counter::AuthAnonymousRefused);
    const char* why = c.username ? "user name cannot be verified (no password file)"
                                 : "anonymous clients are not allowed";
    spdlog::info("connect from {} refused on {}: {}", origin.peer(), origin.listener, why);
    return refuse(rc::NotAuthorized, why);
  }
  if (c.username) username_ = core::InlineString(*c.username);
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
