#include "broker/message.h"

#include <algorithm>

namespace starling::broker {

uint32_t Message::remaining_expiry(Clock::time_point now) const {
  if (!has_expiry) return 0;
  if (now >= expires_at) return 0;
  auto left = std::chrono::duration_cast<std::chrono::seconds>(expires_at - now).count();
  return static_cast<uint32_t>(std::max<int64_t>(left, 1));
}

std::unique_ptr<const MessageProperties> take_pass_through(mqtt::Properties& from) {
  if (!from.payload_format_indicator && !from.content_type && !from.response_topic &&
      !from.correlation_data && from.user_properties.empty()) {
    return nullptr;
  }
  auto out = std::make_unique<MessageProperties>();
  out->payload_format_indicator = from.payload_format_indicator;
  out->content_type = std::move(from.content_type);
  out->response_topic = std::move(from.response_topic);
  out->correlation_data = std::move(from.correlation_data);
  out->user_properties = std::move(from.user_properties);
  return out;
}

mqtt::PublishLayout encode_message(const Message& m, mqtt::Version version, uint8_t qos,
                                   const PerDelivery& per, std::string& out) {
  // Reused per thread: the slow path (subscription ids, aliases, re-stamped expiry) copies
  // topic and payload into it, the common path never comes here twice per message variant.
  thread_local mqtt::Publish p;
  p.dup = false;
  p.qos = qos;
  p.retain = false;
  p.packet_id = qos > 0 ? 1 : 0;  // patched per receiver
  p.topic = per.omit_topic ? std::string() : m.topic;
  p.payload = m.payload;
  p.properties = mqtt::Properties{};
  if (version == mqtt::Version::V5) {
    if (const MessageProperties* mp = m.properties.get()) {
      p.properties.payload_format_indicator = mp->payload_format_indicator;
      p.properties.content_type = mp->content_type;
      p.properties.response_topic = mp->response_topic;
      p.properties.correlation_data = mp->correlation_data;
      p.properties.user_properties = mp->user_properties;
    }
    if (m.has_expiry) p.properties.message_expiry_interval = per.expiry_seconds;
    if (per.subscription_ids) p.properties.subscription_identifiers = *per.subscription_ids;
    if (per.topic_alias) p.properties.topic_alias = per.topic_alias;
  }
  return mqtt::encode_publish(p, version, out);
}

void prepare_variant(const Message& m, mqtt::Version version, bool with_packet_id) {
  auto& slot = m.encoded[version == mqtt::Version::V5][with_packet_id];
  if (slot.ready) return;
  PerDelivery per;
  per.expiry_seconds = m.remaining_expiry(m.received_at);
  slot.layout = encode_message(m, version, with_packet_id ? 1 : 0, per, slot.bytes);
  slot.ready = true;
}

}  // namespace starling::broker
