// An authority outside the broker that decides who connects and what they may do: the user's
// HTTP service ([auth.http], src/hooks/http_auth). It is asked asynchronously: an answer in its
// cache comes back at once, any other later through the callback, on another thread (the
// caller brings it back to its connection's loop).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "auth/client_rules.h"

namespace starling::broker {

enum class Decision : uint8_t {
  Allow,
  Deny,
  Ignore,  // not this authority's call: the next in the chain decides
  Failed,  // no usable answer (timeout, unreachable, 5xx, bad JSON): [auth.http] on_error
};

struct ConnectQuery {
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;
  std::string peerhost;   // the client's address, without the port
  uint8_t proto_ver = 4;  // 3 (3.1), 4 (3.1.1), 5
  std::optional<std::string> cert_common_name;
  std::string listener;
};

struct ConnectAnswer {
  Decision decision = Decision::Failed;
  bool superuser = false;
  std::shared_ptr<const auth::ClientRules> rules;  // null: none in the answer
  std::string reason;                              // Failed: why, for the log
};

enum class AclAction : uint8_t { Publish, Subscribe };

struct AclQuery {
  std::string client_id;
  std::optional<std::string> username;
  std::string peerhost;
  AclAction action = AclAction::Publish;
  std::string topic;  // the topic, or the filter of a SUBSCRIBE
  uint8_t qos = 0;
  bool retain = false;
};

class ExternalAuth {
 public:
  virtual ~ExternalAuth() = default;
  virtual bool checks_connect() const = 0;
  virtual bool checks_acl() const = 0;
  // The cached answer, or nullopt and done(answer) later on another thread.
  virtual std::optional<ConnectAnswer> connect(const ConnectQuery& query,
                                               std::function<void(ConnectAnswer)> done) = 0;
  virtual std::optional<Decision> acl(const AclQuery& query,
                                      std::function<void(Decision)> done) = 0;
};

}  // namespace starling::broker
