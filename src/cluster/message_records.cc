#include "cluster/message_records.h"

#include <chrono>

namespace starling::cluster {

namespace {

uint64_t wall_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::unique_ptr<const broker::MessageProperties> properties_of(MessageRecord& r) {
  if (!r.payload_format_indicator && !r.content_type && !r.response_topic && !r.correlation_data &&
      r.user_properties.empty()) {
    return nullptr;
  }
  auto p = std::make_unique<broker::MessageProperties>();
  p->payload_format_indicator = r.payload_format_indicator;
  p->content_type = std::move(r.content_type);
  p->response_topic = std::move(r.response_topic);
  p->correlation_data = std::move(r.correlation_data);
  p->user_properties = std::move(r.user_properties);
  return p;
}

// Seconds of expiry left after the time the record spent between nodes; nullopt: none;
// 0: expired.
std::optional<uint32_t> expiry_left(const MessageRecord& r) {
  if (!r.expiry_s) return std::nullopt;
  const uint64_t spent_s = age_us(r) / 1000000;
  return spent_s >= *r.expiry_s ? 0u : static_cast<uint32_t>(*r.expiry_s - spent_s);
}

}  // namespace

uint64_t age_us(const MessageRecord& record) {
  const uint64_t now = wall_us();
  return now > record.sent_us ? now - record.sent_us : 0;
}

MessageRecord to_message_record(const broker::Message& msg, const std::string& node) {
  MessageRecord r;
  r.topic = msg.topic;
  r.payload = msg.payload;
  r.qos = msg.qos;
  r.retain = msg.retain;
  if (msg.has_expiry) r.expiry_s = msg.remaining_expiry(broker::Clock::now());
  if (const broker::MessageProperties* p = msg.properties.get()) {
    r.payload_format_indicator = p->payload_format_indicator;
    r.content_type = p->content_type;
    r.response_topic = p->response_topic;
    r.correlation_data = p->correlation_data;
    r.user_properties = p->user_properties;
  }
  r.origin_client_id = msg.origin_client_id;
  r.origin_username = msg.origin_username;
  r.origin_node = node;
  r.sent_us = wall_us();
  return r;
}

broker::MessagePtr to_message(MessageRecord&& record, broker::Clock::time_point now) {
  const std::optional<uint32_t> left = expiry_left(record);
  if (left && *left == 0) return nullptr;
  auto msg = std::make_shared<broker::Message>();
  msg->topic = std::move(record.topic);
  msg->payload = std::move(record.payload);
  msg->qos = record.qos;
  msg->retain = record.retain;
  msg->received_at = now;
  msg->origin_client_id = std::move(record.origin_client_id);
  msg->properties = properties_of(record);
  if (left) {
    msg->has_expiry = true;
    msg->expires_at = now + std::chrono::seconds(*left);
  }
  return msg;
}

bool to_publication(MessageRecord&& record, broker::Publication& out) {
  const std::optional<uint32_t> left = expiry_left(record);
  if (left && *left == 0) return false;
  out.topic = std::move(record.topic);
  out.payload = std::move(record.payload);
  out.qos = record.qos;
  out.retain = record.retain;
  out.expiry_interval = left;
  out.properties = properties_of(record);
  auto scope = std::make_unique<broker::ClusterScope>();
  scope->plain = record.plain;
  scope->groups = std::move(record.groups);
  scope->origin_node = std::move(record.origin_node);
  scope->client = std::move(record.client);
  out.cluster_scope = std::move(scope);
  return true;
}

}  // namespace starling::cluster
