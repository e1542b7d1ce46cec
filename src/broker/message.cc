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

uint64_t wall_clock_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

store::MessageRecord to_record(const Message& m, Clock::time_point now) {
  store::MessageRecord r;
  r.topic = m.topic;
  r.payload = m.payload;
  r.qos = m.qos;
  r.retain = m.retain;
  if (m.has_expiry) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(m.expires_at - now).count();
    r.expires_at_ms = wall_clock_ms() + static_cast<uint64_t>(std::max<int64_t>(left, 1));
  }
  if (const MessageProperties* p = m.properties.get()) {
    r.payload_format_indicator = p->payload_format_indicator;
    r.content_type = p->content_type;
    r.response_topic = p->response_topic;
    r.correlation_data = p->correlation_data;
    r.user_properties = p->user_properties;
  }
  return r;
}

MessagePtr from_record(store::MessageRecord&& r, Clock::time_point now) {
  auto m = std::make_shared<Message>();
  if (r.expires_at_ms != 0) {
    const uint64_t wall = wall_clock_ms();
    if (r.expires_at_ms <= wall) return nullptr;
    m->has_expiry = true;
    m->expires_at = now + std::chrono::milliseconds(r.expires_at_ms - wall);
  }
  m->topic = std::move(r.topic);
  m->payload = std::move(r.payload);
  m->qos = r.qos;
  m->retain = r.retain;
  m->received_at = now;
  if (r.payload_format_indicator || r.content_type || r.response_topic || r.correlation_data ||
      !r.user_properties.empty()) {
    auto p = std::make_unique<MessageProperties>();
    p->payload_format_indicator = r.payload_format_indicator;
    p->content_type = std::move(r.content_type);
    p->response_topic = std::move(r.response_topic);
    p->correlation_data = std::move(r.correlation_data);
    p->user_properties = std::move(r.user_properties);
    m->properties = std::move(p);
  }
  return m;
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
