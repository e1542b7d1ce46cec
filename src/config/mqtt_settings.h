// [mqtt]: what the broker offers clients of the protocol (limits it advertises, features).
#pragma once

#include <cstdint>
#include <string>

namespace starling::config {

struct MqttSettings {
  uint32_t max_packet_size = 1024 * 1024;  // bytes; inbound limit, advertised in CONNACK (5.0)
  uint16_t receive_maximum = 1024;         // inbound QoS 1/2 in flight per client
  uint16_t max_inflight = 256;             // outbound cap (also bounded by the client's)
  uint16_t topic_alias_maximum = 64;       // inbound aliases we accept per connection
  uint8_t max_qos = 2;
  bool retain_available = true;
  bool wildcard_subscriptions = true;
  bool shared_subscriptions = true;
  bool subscription_identifiers = true;
  uint16_t max_keep_alive = 65535;           // seconds; larger requests are lowered (5.0)
  uint32_t max_session_expiry = 0xFFFFFFFF;  // seconds
  bool allow_empty_client_id = true;         // assign one (5.0 and 3.1.1 clean session)
  uint32_t retry_interval_ms = 0;            // 0: resend only on reconnect, as the spec asks
  // Response Information (5.0) for a client that sets Request Response Information: the basis
  // of its response topics. Empty: none is sent.
  std::string response_information;
  bool operator==(const MqttSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [mqtt] section, for the loader (config.cc).
Field<Config> mqtt_section();

}  // namespace starling::config
