// [limits]: what one client, connection or address may use of the broker.
#pragma once

#include <cstdint>
#include <string_view>

namespace starling::config {

struct Limits {
  uint32_t max_queued_messages = 10000;     // per session, QoS 1/2 waiting to be sent
  uint64_t max_queued_bytes = 64ull << 20;  // per session
  // Queued messages of a persistent session kept in memory; the rest wait in the store and
  // are read back in pages as the queue drains (durability batch/always only).
  uint32_t queue_resident_messages = 1000;
  uint64_t max_out_buffer_bytes = 8ull << 20;  // per connection; QoS 0 beyond it is dropped
  uint32_t max_connections = 0;                // 0: no limit
  uint32_t max_topic_length = 65535;
  uint32_t max_topic_levels = 128;
  uint32_t max_subscriptions_per_client = 0;  // 0: no limit
  uint32_t max_client_id_length = 65535;
  uint32_t connect_timeout_ms = 10000;           // a CONNECT must arrive within this
  uint32_t max_connections_per_address = 0;      // per source IP address; 0: no limit
  uint32_t max_connection_rate_per_address = 0;  // new connections per second per IP; 0: none
  uint32_t max_publish_rate = 0;  // PUBLISH packets per second per client; 0: no limit
  // A client whose output waits this long with the socket full (it does not read) is closed.
  uint32_t slow_client_timeout_ms = 60000;
  // A topic name or filter within max_topic_length and max_topic_levels (PUBLISH, SUBSCRIBE).
  bool topic_within(std::string_view topic) const;
  bool operator==(const Limits&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [limits] section, for the loader (config.cc).
Field<Config> limits_section();

}  // namespace starling::config
