// An application message on its way through the broker: immutable once routed, shared by
// reference count between the retained store, session queues and in-flight windows.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mqtt/codec.h"
#include "mqtt/packet.h"
#include "store/records.h"

namespace starling::broker {

using Clock = std::chrono::steady_clock;

// One encoded PUBLISH of this message for one wire variant; receivers copy it and patch the
// first byte and packet id (see mqtt::PublishLayout).
struct EncodedPublish {
  std::string bytes;
  mqtt::PublishLayout layout;
  bool ready = false;
};

// The 5.0 properties that travel with a message unchanged (section 3.3.2.3). Most messages
// carry none, so a Message holds them behind a pointer.
struct MessageProperties {
  std::optional<uint8_t> payload_format_indicator;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<std::pair<std::string, std::string>> user_properties;
};

// Takes the pass-through properties out of a PUBLISH's or a will's properties; null if none.
std::unique_ptr<const MessageProperties> take_pass_through(mqtt::Properties& from);

// A message forwarded by another node of the cluster: which of this node's receivers it is
// for. The sending node picked this node for the shared groups listed; plain subscriptions
// get it when plain is set.
struct ClusterScope {
  bool plain = true;
  std::vector<std::string> groups;  // "$share/g/filter"
  std::string origin_node;
  std::string client;  // not empty: only this client's plain subscriptions
};

struct Message {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  // Expiry is kept as a deadline below; subscription ids and topic aliases belong to each
  // delivery.
  std::unique_ptr<const MessageProperties> properties;
  bool has_expiry = false;
  Clock::time_point expires_at{};
  Clock::time_point received_at{};
  std::string origin_client_id;  // for No Local
  std::string origin_username;   // set only with the Kafka bridge (templates, headers)
  bool from_bridge = false;      // consumed from Kafka: not produced back to it
  // From another node (null: published here): not forwarded again, and its retained copy
  // comes through the cluster's retained log, not with it.
  std::unique_ptr<const ClusterScope> cluster_scope;

  // Encoded variants: [v5 ? 1 : 0][qos > 0 ? 1 : 0]. Filled by the routing thread before any
  // receiver sees the message and never written after; readers that find a variant not ready
  // encode for themselves.
  mutable std::array<std::array<EncodedPublish, 2>, 2> encoded;

  bool expired(Clock::time_point now) const { return has_expiry && now >= expires_at; }
  // Remaining expiry in seconds (at least 1 while not expired), for the re-encoded property.
  uint32_t remaining_expiry(Clock::time_point now) const;
};

using MessagePtr = std::shared_ptr<const Message>;

// What one receiver's PUBLISH adds to the message's own fields.
struct PerDelivery {
  const std::vector<uint32_t>* subscription_ids = nullptr;
  uint32_t expiry_seconds = 0;  // the remaining message expiry, when the message has one
  uint16_t topic_alias = 0;
  bool omit_topic = false;  // the alias is already known to the receiver
};

// Encodes the message as a PUBLISH for one receiver (flags and packet id to be patched).
mqtt::PublishLayout encode_message(const Message& m, mqtt::Version version, uint8_t qos,
                                   const PerDelivery& per, std::string& out);

// Conversions to and from the durable form. Expiry travels as wall-clock time.
store::MessageRecord to_record(const Message& m, Clock::time_point now);
// Null when the stored message expired while the broker was down.
MessagePtr from_record(store::MessageRecord&& r, Clock::time_point now);
uint64_t wall_clock_ms();

// Fills m.encoded for the variant if not ready. Routing thread only, before fan-out.
void prepare_variant(const Message& m, mqtt::Version version, bool with_packet_id);

}  // namespace starling::broker
