#include "broker/ingress.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/broker.h"
#include "metrics/counters.h"
#include "mqtt/topic.h"
#include "store/records.h"

namespace starling::broker {

const char* describe(PublishVerdict v) {
  switch (v) {
    case PublishVerdict::Delivered:
      return "delivered";
    case PublishVerdict::NoSubscribers:
      return "no matching subscribers";
    case PublishVerdict::InvalidTopic:
      return "invalid topic name";
    case PublishVerdict::TopicOverLimits:
      return "topic name exceeds the configured limits";
    case PublishVerdict::ReservedTopic:
      return "$SYS and $share topics are the broker's own";
    case PublishVerdict::NotAuthorized:
      return "not authorized to publish to this topic";
    case PublishVerdict::QosNotSupported:
      return "QoS above the maximum QoS";
    case PublishVerdict::RetainNotSupported:
      return "retain is not available";
    case PublishVerdict::QueuesFull:
      return "every matching subscriber refused the message (queue full)";
    case PublishVerdict::BridgeFull:
      return "the Kafka bridge's buffer is full";
  }
  return "unknown";
}

PublishVerdict Ingress::check(const Publication& pub, const Publisher& from) {
  const config::Config& settings = *from.settings;
  if (pub.qos > settings.mqtt.max_qos) return PublishVerdict::QosNotSupported;
  if (pub.retain && !settings.mqtt.retain_available) return PublishVerdict::RetainNotSupported;
  if (!mqtt::valid_topic_name(pub.topic)) return PublishVerdict::InvalidTopic;
  if (!settings.limits.topic_within(pub.topic)) {
    metrics::add(metrics::Counter::LimitTopic);
    return PublishVerdict::TopicOverLimits;
  }
  // A reserved topic is refused like an ACL denial, whatever the ACL says.
  if (mqtt::reserved_topic_name(pub.topic)) {
    metrics::add(metrics::Counter::AclDeniedPublish);
    return PublishVerdict::ReservedTopic;
  }
  if (from.acl && !from.acl->can_publish(pub.topic)) {
    metrics::add(metrics::Counter::AclDeniedPublish);
    return PublishVerdict::NotAuthorized;
  }
  return PublishVerdict::Delivered;
}

bool Ingress::needs_store(const Publication& pub, const Publisher& from) const {
  // With a store, a QoS 1/2 or retained publish is answered only once what it changed is
  // durable: the queue records of persistent receivers, the retained message, the Kafka
  // bridge's buffer and (QoS 2, a persistent publisher) the packet id.
  return broker_.store() && (pub.qos > 0 || pub.retain || from.durable_at_qos0);
}

PublishResult Ingress::publish(Publication&& pub, const Publisher& from, Clock::time_point now) {
  std::optional<PublishBatch> durable;
  if (needs_store(pub, from)) durable.emplace(broker_.store());
  PublishResult result = route(std::move(pub), from, now, durable ? &*durable : nullptr);
  if (durable) result.ticket = durable->commit();
  return result;
}

Ingress::Batch::Batch(Ingress& ingress) : ingress_(ingress) {}

Ingress::Batch::~Batch() {
  commit();
}

PublishResult Ingress::Batch::publish(Publication&& pub, const Publisher& from,
                                      Clock::time_point now) {
  PublishBatch* durable = nullptr;
  if (ingress_.needs_store(pub, from)) {
    if (!durable_) durable_.emplace(ingress_.broker_.store());
    durable = &*durable_;
  }
  return ingress_.route(std::move(pub), from, now, durable);
}

store::Batch* Ingress::Batch::store_batch() {
  if (ingress_.broker_.store() == nullptr) return nullptr;
  if (!durable_) durable_.emplace(ingress_.broker_.store());
  return &durable_->batch();
}

PublishBatch* Ingress::Batch::publish_batch() {
  return store_batch() ? &*durable_ : nullptr;
}

uint64_t Ingress::Batch::commit() {
  return durable_ ? durable_->commit() : 0;
}

PublishResult Ingress::route(Publication&& pub, const Publisher& from, Clock::time_point now,
                             PublishBatch* durable) {
  PublishResult result;
  result.verdict = check(pub, from);
  if (result.verdict != PublishVerdict::Delivered) {
    spdlog::debug("publish to '{}' by '{}' refused: {}", pub.topic, from.client_id,
                  describe(result.verdict));
    return result;
  }

  auto msg = std::make_shared<Message>();
  msg->qos = pub.qos;
  msg->retain = pub.retain;
  msg->received_at = now;
  msg->origin_client_id = from.client_id;
  msg->from_bridge = from.from_bridge;
  msg->cluster_scope = std::move(pub.cluster_scope);
  if (broker_.bridge()) msg->origin_username = from.username;  // only its templates read it
  msg->properties = std::move(pub.properties);
  if (pub.expiry_interval) {
    msg->has_expiry = true;
    msg->expires_at = now + std::chrono::seconds(*pub.expiry_interval);
  }
  if (!pub.wire_packet.empty()) {
    EncodedPublish& slot = msg->encoded[pub.wire_v5][pub.qos > 0];
    slot.bytes.assign(pub.wire_packet);
    slot.layout = pub.wire_layout;
    slot.ready = true;
  }
  msg->topic = std::move(pub.topic);
  msg->payload = std::move(pub.payload);

  PublishOutcome outcome = broker_.publish(msg, from.session, from.link, now, durable);
  result.gate = std::move(outcome.gate);
  result.congested = outcome.congested;
  if (outcome.refused) {
    result.verdict = PublishVerdict::BridgeFull;
  } else if (outcome.receivers == 0 && outcome.dropped > 0) {
    // One too large for its receiver is not refused: it is discarded as if sent
    // ([MQTT-3.1.2-25]) and counts as a receiver.
    result.verdict = PublishVerdict::QueuesFull;
  } else if (outcome.receivers == 0) {
    result.verdict = PublishVerdict::NoSubscribers;
  }
  if (durable && pub.inbound_qos2_id != 0 && taken(result.verdict)) {
    durable->batch().put(store::inbound_key(from.client_id, pub.inbound_qos2_id), "");
  }
  return result;
}

}  // namespace starling::broker
