// The durable records and their keys. One RocksDB keyspace, a one-byte prefix per kind:
//
//   S <client>                      session: expiry interval, when it went offline
//   B <client> \0 <filter>          subscription of a persistent session
//   Q <client> \0 <seq:8 BE>        a QoS 1/2 message queued or in flight to a session
//   I <client> \0 <packet id:2 BE>  inbound QoS 2 packet id awaiting PUBREL
//   R <topic>                       retained message
//   W <client>                      delayed will and when it is due
//   K <seq:8 BE>                    a record waiting to be produced to Kafka (async bridge)
//
// Client ids and topics are MQTT UTF-8 strings, which cannot contain U+0000, so \0 separates
// safely and prefix scans per client are exact. Values are a version byte and fixed fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starling::store {

enum class Kind : char {
  Session = 'S',
  Subscription = 'B',
  Queued = 'Q',
  InboundQos2 = 'I',
  Retained = 'R',
  Will = 'W',
  KafkaOutbox = 'K',
  ClusterInbox = 'C',  // the next offset to read of a partition of this node's cluster inbox
};

// A message as stored. Times are wall-clock milliseconds since the epoch, so they survive a
// restart (steady_clock does not).
struct MessageRecord {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  uint64_t expires_at_ms = 0;  // 0: no expiry
  std::optional<uint8_t> payload_format_indicator;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<std::pair<std::string, std::string>> user_properties;
  bool operator==(const MessageRecord&) const = default;
};

struct SessionRecord {
  uint32_t expiry_interval = 0;
  uint64_t disconnected_at_ms = 0;  // 0: it was online when last written
  bool operator==(const SessionRecord&) const = default;
};

struct SubscriptionRecord {
  uint8_t qos = 0;
  bool no_local = false;
  bool retain_as_published = false;
  uint8_t retain_handling = 0;
  uint32_t subscription_id = 0;
  bool operator==(const SubscriptionRecord&) const = default;
};

enum class QueueState : uint8_t { Queued = 0, Sent = 1, Released = 2 };

struct QueuedRecord {
  MessageRecord message;
  uint8_t qos = 0;  // the delivery's QoS (the subscription may have lowered it)
  bool retain = false;
  QueueState state = QueueState::Queued;
  uint16_t packet_id = 0;  // when Sent or Released
  std::vector<uint32_t> subscription_ids;
  std::string share_group;  // non-empty when it came through a shared subscription
  bool operator==(const QueuedRecord&) const = default;
};

struct WillRecord {
  MessageRecord message;
  uint32_t delay_interval = 0;  // will delay (for the message expiry of the will)
  uint64_t due_ms = 0;
  bool operator==(const WillRecord&) const = default;
};

// A Kafka record the async bridge accepted and Kafka has not acknowledged yet.
struct KafkaOutboxRecord {
  uint32_t rule = 0;  // index of the [[kafka.produce]] rule, for its partitioner
  std::string topic;
  std::optional<std::string> key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const KafkaOutboxRecord&) const = default;
};

// Keys.
std::string session_key(std::string_view client);
std::string subscription_key(std::string_view client, std::string_view filter);
std::string queued_key(std::string_view client, uint64_t seq);
std::string inbound_key(std::string_view client, uint16_t packet_id);
std::string retained_key(std::string_view topic);
std::string will_key(std::string_view client);
std::string kafka_outbox_key(uint64_t seq);
// "C<topic>\0" + partition (big-endian); its value is the next offset (big-endian u64).
std::string cluster_inbox_key(std::string_view topic, int32_t partition);
std::string cluster_inbox_value(int64_t offset);
// Prefix of all records of one kind for one client ("B<client>\0").
std::string client_prefix(Kind kind, std::string_view client);

// Parts of keys, for loading. Return false on a key of the wrong shape.
bool parse_client_key(std::string_view key, std::string& client);  // S and W
bool parse_subscription_key(std::string_view key, std::string& client, std::string& filter);
bool parse_queued_key(std::string_view key, std::string& client, uint64_t& seq);
bool parse_inbound_key(std::string_view key, std::string& client, uint16_t& packet_id);
bool parse_retained_key(std::string_view key, std::string& topic);
bool parse_kafka_outbox_key(std::string_view key, uint64_t& seq);
bool parse_cluster_inbox(std::string_view key, std::string_view value, std::string& topic,
                         int32_t& partition, int64_t& offset);

// Values. decode_* return false on a corrupt or unknown-version value.
std::string encode(const SessionRecord& r);
std::string encode(const SubscriptionRecord& r);
std::string encode(const QueuedRecord& r);
std::string encode(const MessageRecord& r);
std::string encode(const WillRecord& r);
std::string encode(const KafkaOutboxRecord& r);
bool decode(std::string_view in, SessionRecord& r);
bool decode(std::string_view in, SubscriptionRecord& r);
bool decode(std::string_view in, QueuedRecord& r);
bool decode(std::string_view in, MessageRecord& r);
bool decode(std::string_view in, WillRecord& r);
bool decode(std::string_view in, KafkaOutboxRecord& r);

}  // namespace starling::store
