// The topic rules of one bridge ([[bridges.topics]], Mosquitto's `topic pattern direction qos
// local-prefix remote-prefix`): which local topics go out and under which remote name, and the
// reverse for what comes in. The first rule that matches decides, as in Mosquitto.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/bridge_settings.h"

namespace starling::bridge {

struct Subscription {
  std::string filter;
  uint8_t qos = 0;
  bool operator==(const Subscription&) const = default;
};

class TopicMap {
 public:
  explicit TopicMap(const std::vector<config::BridgeTopic>& rules);

  // A local topic delivered to the bridge's session: its name at the remote (nullopt: no out
  // rule matches it, which happens only for subscriptions of a rule removed since).
  std::optional<std::string> to_remote(std::string_view local_topic) const;
  // A topic that came from the remote: its name here (nullopt: no in rule matches).
  std::optional<std::string> to_local(std::string_view remote_topic) const;

  // The subscriptions the rules make: here (out rules) and at the remote (in rules), each
  // filter once with the highest QoS of the rules that name it.
  const std::vector<Subscription>& local_subscriptions() const { return local_; }
  const std::vector<Subscription>& remote_subscriptions() const { return remote_; }

 private:
  std::vector<config::BridgeTopic> rules_;
  std::vector<Subscription> local_;
  std::vector<Subscription> remote_;
};

}  // namespace starling::bridge
