#include "config/mqtt_settings.h"

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

// A string the broker sends as an MQTT UTF-8 string (at most 65535 bytes).
std::string mqtt_string(const Reader& r, const toml::node& n, const std::string& path) {
  std::string value = r.string(n, path);
  if (value.size() > 65535) r.fail(n, path + " must be at most 65535 bytes");
  return value;
}

const std::vector<Field<MqttSettings>>& mqtt_fields() {
  using M = MqttSettings;
  static const std::vector<Field<M>> fields = {
      // Below 20 bytes ordinary CONNECTs would be refused; 268435455 is the protocol's maximum.
      integer_field("max_packet_size", &M::max_packet_size, 20, 268435455),
      // 0 is a protocol error for Receive Maximum, and an inflight cap of 0 would stall QoS 1/2.
      integer_field("receive_maximum", &M::receive_maximum, 1),
      integer_field("max_inflight", &M::max_inflight, 1),
      integer_field("topic_alias_maximum", &M::topic_alias_maximum),  // 0: no aliases
      integer_field("max_qos", &M::max_qos, 0, 2),
      bool_field("retain_available", &M::retain_available),
      bool_field("wildcard_subscriptions", &M::wildcard_subscriptions),
      bool_field("shared_subscriptions", &M::shared_subscriptions),
      bool_field("subscription_identifiers", &M::subscription_identifiers),
      // Lowering every keep alive to 0 would silently switch keep alive off for all clients.
      integer_field("max_keep_alive", &M::max_keep_alive, 1),
      integer_field("max_session_expiry", &M::max_session_expiry),
      bool_field("allow_empty_client_id", &M::allow_empty_client_id),
      integer_field("retry_interval_ms", &M::retry_interval_ms),
      field("response_information", &M::response_information, mqtt_string),
  };
  return fields;
}

}  // namespace

Field<Config> mqtt_section() {
  return section("mqtt", &Config::mqtt, mqtt_fields());
}

}  // namespace starling::config
