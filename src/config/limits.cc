#include "config/limits.h"

#include "config/config.h"
#include "config/reader.h"
#include "mqtt/topic.h"

namespace starling::config {

bool Limits::topic_within(std::string_view topic) const {
  // A topic has at most size + 1 levels: they are counted only when that could be too many
  // (this runs on every PUBLISH).
  return topic.size() <= max_topic_length &&
         (topic.size() < max_topic_levels || mqtt::topic_levels(topic) <= max_topic_levels);
}

namespace {

const std::vector<Field<Limits>>& limits_fields() {
  using L = Limits;
  // Zero is allowed only where it means "no limit"; elsewhere it would refuse all traffic.
  static const std::vector<Field<L>> fields = {
      integer_field("max_queued_messages", &L::max_queued_messages, 1),
      integer_field("max_queued_bytes", &L::max_queued_bytes, 1),
      integer_field("queue_resident_messages", &L::queue_resident_messages, 1),
      integer_field("max_out_buffer_bytes", &L::max_out_buffer_bytes, 1),
      integer_field("max_connections", &L::max_connections),
      // Topics and client ids are MQTT strings: at most 65535 bytes.
      integer_field("max_topic_length", &L::max_topic_length, 1, 65535),
      integer_field("max_topic_levels", &L::max_topic_levels, 1, 65535),
      integer_field("max_subscriptions_per_client", &L::max_subscriptions_per_client),
      integer_field("max_client_id_length", &L::max_client_id_length, 1, 65535),
      integer_field("connect_timeout_ms", &L::connect_timeout_ms, 1),
      integer_field("max_connections_per_address", &L::max_connections_per_address),
      integer_field("max_connection_rate_per_address", &L::max_connection_rate_per_address),
      integer_field("max_publish_rate", &L::max_publish_rate),
      integer_field("slow_client_timeout_ms", &L::slow_client_timeout_ms, 1),
  };
  return fields;
}

}  // namespace

Field<Config> limits_section() {
  return section("limits", &Config::limits, limits_fields());
}

}  // namespace starling::config
