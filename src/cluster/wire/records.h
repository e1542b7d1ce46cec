// The records Starling nodes exchange through Kafka (the cluster's only channel; see
// docs/cluster.md). Values are binary: a format byte, then fixed-width integers (little
// endian) and length-prefixed strings. decode() takes any bytes and answers false on anything
// malformed (a record from another version or a corrupted log): the reader skips it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace starling::cluster {

// A message for another node's inbox (inbox.<node>), or a retained message (retained, keyed
// by topic). Expiry travels as the seconds left when it was written.
struct MessageRecord {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  std::optional<uint32_t> expiry_s;
  std::optional<uint8_t> payload_format_indicator;
  std::optional<std::string> content_type;
  std::optional<std::string> response_topic;
  std::optional<std::string> correlation_data;
  std::vector<std::pair<std::string, std::string>> user_properties;
  std::string origin_client_id;
  std::string origin_username;
  std::string origin_node;
  uint64_t sent_us = 0;  // the sender's wall clock (microseconds), for the forward latency
  // Which receivers of the destination it is for: its plain subscriptions, and the shared
  // groups ("$share/g/filter") the sender picked this node for.
  bool plain = true;
  std::vector<std::string> groups;
  // Every node the publish was forwarded to, when more than one: the node a session moved
  // away from passes a late message on to the session's new node only when that node did not
  // get it too (Cluster::relay).
  std::vector<std::string> also;
  // Not empty: for this client's subscriptions alone (a message passed on after its session
  // moved).
  std::string client;
  bool operator==(const MessageRecord&) const = default;
};

// nodes (key: node id): a node is alive.
struct HeartbeatRecord {
  uint64_t epoch = 0;  // the node's start, wall clock ms: a new epoch is a restart
  uint64_t sent_ms = 0;
  uint32_t interval_ms = 0;
  std::string http;      // the node's HTTP address ("" when off)
  bool leaving = false;  // the node stops cleanly
  // How far the node has read the routes log: partition -> next offset. A SUBACK waits until
  // every node that is up has read the new route (the route barrier).
  std::vector<std::pair<int32_t, int64_t>> routes_read;
  // The same for the retained log: a QoS 1/2 retained publish is acknowledged once every node
  // that is up has read it (the retained barrier).
  std::vector<std::pair<int32_t, int64_t>> retained_read;
  bool operator==(const HeartbeatRecord&) const = default;
};

// routes (key: route_key(node, filter)): a node has local subscribers on filter. A tombstone
// (no value) removes it.
struct RouteRecord {
  uint64_t epoch = 0;
  uint32_t members = 1;  // subscribers there (shared groups weigh nodes by it)
  bool operator==(const RouteRecord&) const = default;
};

// sessions (key: client id): a node took the client id (a CONNECT). The last claim in the
// log's order owns it; older owners kick their connection.
struct ClaimRecord {
  std::string node;
  uint64_t epoch = 0;
  uint64_t claimed_ms = 0;
  bool clean_start = false;
  uint32_t expiry_s = 0;
  bool operator==(const ClaimRecord&) const = default;
};

// inbox.<node> (key client id): a session moving to that node, from the node that held it
// (after a claim without clean start). Its parts are the store's own records, as bytes: the
// subscriptions (filter + store SubscriptionRecord) and the messages (store QueuedRecord, in
// flight first). found = false: the old node had no session to give (the new one starts
// afresh at once instead of waiting).
struct HandoverRecord {
  std::string client_id;
  std::string from_node;
  bool found = false;
  uint32_t expiry_s = 0;
  std::vector<std::pair<std::string, std::string>> subscriptions;
  std::vector<std::string> messages;
  std::vector<uint16_t> inbound_qos2;
  // More records of this handover follow (a session larger than one Kafka record goes in
  // several, the subscriptions and inbound ids in the first).
  bool more = false;
  bool operator==(const HandoverRecord&) const = default;
};

// What a record of an inbox is, from its first byte.
enum class InboxKind : uint8_t { Unknown, Message, Handover };
InboxKind inbox_kind(std::string_view bytes);

std::string encode(const MessageRecord& r);
std::string encode(const HandoverRecord& r);
bool decode(std::string_view bytes, HandoverRecord& out);
std::string encode(const HeartbeatRecord& r);
std::string encode(const RouteRecord& r);
std::string encode(const ClaimRecord& r);
bool decode(std::string_view bytes, MessageRecord& out);
bool decode(std::string_view bytes, HeartbeatRecord& out);
bool decode(std::string_view bytes, RouteRecord& out);
bool decode(std::string_view bytes, ClaimRecord& out);

// The routes topic's key: node id and filter (node ids have no spaces).
std::string route_key(std::string_view node, std::string_view filter);
bool parse_route_key(std::string_view key, std::string_view& node, std::string_view& filter);

}  // namespace starling::cluster
