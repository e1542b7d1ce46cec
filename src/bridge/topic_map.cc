#include "bridge/topic_map.h"

#include <algorithm>

#include "mqtt/topic.h"

namespace starling::bridge {

namespace {

void add(std::vector<Subscription>& subs, std::string filter, uint8_t qos) {
  auto it = std::find_if(subs.begin(), subs.end(),
                         [&](const Subscription& s) { return s.filter == filter; });
  if (it == subs.end()) {
    subs.push_back({std::move(filter), qos});
  } else {
    it->qos = std::max(it->qos, qos);
  }
}

// from_prefix + rest -> to_prefix + rest, when topic matches from_prefix + pattern.
std::optional<std::string> rename(std::string_view topic, const std::string& pattern,
                                  const std::string& from_prefix, const std::string& to_prefix) {
  if (!topic.starts_with(from_prefix)) return std::nullopt;
  if (pattern.empty()) {
    // Mosquitto's `topic "" dir qos local remote`: one topic to one topic.
    if (topic.size() != from_prefix.size()) return std::nullopt;
    return to_prefix;
  }
  // The filter the subscription was made with, so that exactly what it delivers maps.
  if (!mqtt::topic_matches(from_prefix + pattern, topic)) return std::nullopt;
  std::string out = to_prefix;
  out.append(topic.substr(from_prefix.size()));
  return out;
}

}  // namespace

TopicMap::TopicMap(const std::vector<config::BridgeTopic>& rules) : rules_(rules) {
  for (const config::BridgeTopic& r : rules_) {
    if (r.out()) add(local_, r.local_filter(), r.qos);
    if (r.in()) add(remote_, r.remote_filter(), r.qos);
  }
}

std::optional<std::string> TopicMap::to_remote(std::string_view local_topic) const {
  for (const config::BridgeTopic& r : rules_) {
    if (!r.out()) continue;
    if (auto t = rename(local_topic, r.pattern, r.local_prefix, r.remote_prefix)) return t;
  }
  return std::nullopt;
}

std::optional<std::string> TopicMap::to_local(std::string_view remote_topic) const {
  for (const config::BridgeTopic& r : rules_) {
    if (!r.in()) continue;
    if (auto t = rename(remote_topic, r.pattern, r.remote_prefix, r.local_prefix)) return t;
  }
  return std::nullopt;
}

}  // namespace starling::bridge
