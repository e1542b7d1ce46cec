// The front door of every publish, whatever its transport: MQTT PUBLISH (Client), HTTP
// (http/publish), Kafka consume rules (kafka/consumer), other cluster nodes (cluster/inbox), and
// later bridges.
// It validates the message against the broker's rules (topic name, length and levels, max_qos,
// retain_available, reserved topics, the publisher's ACL), builds the Message, routes it, writes
// and commits what it changed in the store, and returns a verdict that each transport maps to
// its own answer (MQTT reason code, HTTP status, Kafka skip counter). Transports keep only what
// is theirs: topic aliases, packet ids and Receive Maximum, HTTP bodies, Kafka records.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/acl.h"
#include "broker/attachment.h"
#include "broker/message.h"
#include "broker/session.h"
#include "config/config.h"
#include "mqtt/codec.h"

namespace starling::broker {

class Broker;
class AckGate;

// Who publishes, as far as the front door needs to know.
struct Publisher {
  // The rules it publishes under (an MQTT connection keeps those in force when it connected).
  const config::Config* settings = nullptr;
  std::string_view client_id;            // MQTT: the message's origin (No Local); else ""
  std::string_view username;             // for the Kafka bridge's templates and headers
  const Session* session = nullptr;      // MQTT: No Local compares receivers with it
  Attachment link;                       // where to resume reading after congestion
  const auth::ClientAcl* acl = nullptr;  // what it may publish; null: any topic
  bool from_bridge = false;              // Kafka consume rules: never offered back to Kafka
  // A QoS 0 publish waits for the store too when it wrote something: an HTTP 2xx means the
  // bridge's buffer has it on disk; a Kafka offset is stored only once what it routed is.
  bool durable_at_qos0 = false;
};

// One message as a transport hands it in; the front door moves its strings into the Message.
struct Publication {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  std::optional<uint32_t> expiry_interval;  // Message Expiry Interval, seconds
  std::unique_ptr<const MessageProperties> properties;
  // MQTT: the PUBLISH as received. Forwarded as it is to receivers of the same version and QoS
  // class (flags and packet id are patched per receiver). Empty packet: none.
  std::string_view wire_packet;
  mqtt::PublishLayout wire_layout;
  bool wire_v5 = false;
  // MQTT QoS 2 from a persistent session: the packet id is stored with the message, so that a
  // retransmission after a restart is known as one. 0: none.
  uint16_t inbound_qos2_id = 0;
  // Forwarded by another node of the cluster: for which receivers here (null: published here).
  std::unique_ptr<const ClusterScope> cluster_scope;
};

enum class PublishVerdict : uint8_t {
  // Taken: routed (and stored where it had to be).
  Delivered,      // at least one receiver took it
  NoSubscribers,  // nobody subscribes to the topic
  // Refused before routing: nothing was routed or stored.
  InvalidTopic,        // not a topic name (empty, wildcards, not UTF-8, U+0000)
  TopicOverLimits,     // longer than limits.max_topic_length or deeper than max_topic_levels
  ReservedTopic,       // $SYS/... or $share/...: the broker's own
  NotAuthorized,       // the publisher's ACL denies the topic
  QosNotSupported,     // above mqtt.max_qos
  RetainNotSupported,  // retain with mqtt.retain_available off
  // Refused after routing was tried.
  QueuesFull,  // every matching receiver refused it (full queue)
  BridgeFull,  // the Kafka bridge's buffer is full
};

// Whether the broker took the message (the publisher's answer is a success).
constexpr bool taken(PublishVerdict v) {
  return v == PublishVerdict::Delivered || v == PublishVerdict::NoSubscribers;
}
// Refused by the broker's rules before routing: pub was left as it was.
constexpr bool refused_by_rules(PublishVerdict v) {
  return !taken(v) && v != PublishVerdict::QueuesFull && v != PublishVerdict::BridgeFull;
}
// One line for logs and error bodies: "invalid topic name", ...
const char* describe(PublishVerdict v);

struct PublishResult {
  PublishVerdict verdict = PublishVerdict::NoSubscribers;
  // The store ticket to wait for before answering; 0: nothing to wait for.
  uint64_t ticket = 0;
  // The Kafka bridge's sync mode: answer once the gate settles (the creator's share is the
  // caller's: arm it, with nullptr when nobody waits).
  std::shared_ptr<AckGate> gate;
  // A receiver's queue is filling: slow the publisher down (it is resumed through
  // ConnectionControl).
  bool congested = false;
};

class Ingress {
 public:
  explicit Ingress(Broker& broker) : broker_(broker) {}

  // One publish, committed on its own. pub's strings move into the Message unless the rules
  // refuse it (refused_by_rules): then pub is left as it was, for the transport's log.
  PublishResult publish(Publication&& pub, const Publisher& from, Clock::time_point now);

  // Publishes whose store writes commit together, with one ticket to wait for (a Kafka batch,
  // an HTTP bulk request). The batch commits at commit() or when it goes.
  class Batch {
   public:
    explicit Batch(Ingress& ingress);
    ~Batch();
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    // The result's ticket is 0: the batch's is known at commit().
    PublishResult publish(Publication&& pub, const Publisher& from, Clock::time_point now);
    // The store batch the publishes commit with (null without a store): a transport adds its
    // own position to it (the cluster's inbox offsets), durable together with what it routed.
    store::Batch* store_batch();
    // The same batch as the broker's publishes use it (null without a store): a transport's own
    // outbox records (the cluster passing a message on) commit with what it routed.
    PublishBatch* publish_batch();
    // Hands the writes to the store; the ticket to wait for, 0 if nothing was written.
    uint64_t commit();

   private:
    Ingress& ingress_;
    std::optional<PublishBatch> durable_;
  };

  // The checks alone: Delivered when the message may go in.
  static PublishVerdict check(const Publication& pub, const Publisher& from);

 private:
  PublishResult route(Publication&& pub, const Publisher& from, Clock::time_point now,
                      PublishBatch* durable);
  bool needs_store(const Publication& pub, const Publisher& from) const;

  Broker& broker_;
};

}  // namespace starling::broker
