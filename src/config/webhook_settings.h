// [[webhooks]]: broker events (clients coming and going, subscriptions, deliveries, drops)
// POSTed as JSON batches to the user's URL. See docs/webhooks.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/error.h"

namespace starling::config {

// The events a webhook can ask for, by the names EMQX gives them.
inline constexpr std::string_view kWebhookEvents[] = {
    "client.connected",   "client.disconnected",  "session.created",   "session.terminated",
    "session.subscribed", "session.unsubscribed", "message.delivered", "message.dropped",
};

struct WebhookSettings {
  std::string name;  // letters, digits, '_', '-': in metrics and logs
  std::string url;
  std::vector<std::string> events;  // from kWebhookEvents
  std::vector<std::string> topics;  // message.* and session.(un)subscribed: only these filters
  uint32_t batch_max = 100;         // events in one POST at most
  uint32_t batch_delay_ms = 100;    // a batch waits this long for more events
  uint32_t queue_max = 10000;       // events waiting; more are dropped and counted
  uint32_t timeout_ms = 5000;
  uint32_t retry_min_ms = 500;       // after a failed POST, doubling ...
  uint32_t retry_max_ms = 30000;     // ... up to this
  uint32_t pool_size = 2;            // connections to the URL at most
  std::string ca_file;               // CA for an https URL; "" = the system's
  std::vector<std::string> headers;  // "Name: value"
  SourceLine line;
  bool wants(std::string_view event) const {
    for (const auto& e : events)
      if (e == event) return true;
    return false;
  }
  bool operator==(const WebhookSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [[webhooks]] array, for the loader (config.cc).
Field<Config> webhooks_section();

}  // namespace starling::config
