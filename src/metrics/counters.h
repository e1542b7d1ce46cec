// Broker-wide counters, sharded per thread so the hot path increments a cache line no other
// thread writes. Readers ($SYS, /metrics) sum the shards; a sum is a consistent-enough snapshot.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace starling::metrics {

enum class Counter : uint8_t {
  ConnectionsAccepted,
  ConnectionsRefused,  // CONNACK with a failure code, or over a connection limit
  ConnectionsClosed,
  MessagesReceived,  // PUBLISH packets from clients
  MessagesSent,      // PUBLISH packets to clients
  MessagesRouted,    // publishes that matched at least one subscriber
  MessagesNoSubscriber,
  BytesReceived,
  BytesSent,
  DroppedQueueFull,       // QoS 0 over the output buffer limit, QoS 1/2 over the session queue
  DroppedExpired,         // message expiry interval passed while queued
  DroppedTooLarge,        // bigger than the receiver's maximum packet size
  DroppedOfflineQos0,     // QoS 0 for an offline persistent session (not queued by design)
  DroppedSessionEnded,    // queued or in flight when its session ended (clean start, expiry)
  DroppedNoSharedMember,  // a shared subscription's message whose group had no member left
  ProtocolErrors,         // connections closed for a malformed or protocol-violating packet
  KeepAliveTimeouts,
  PublishersThrottled,  // times a publisher's reading was paused by a full receiver
  MessagesQueued,       // deliveries that waited in a session queue instead of going out
  // The HTTP server (src/http).
  HttpConnectionsAccepted,
  HttpConnectionsRefused,  // over [http] max_connections
  HttpRequests,
  HttpResponses2xx,
  HttpResponses4xx,
  HttpResponses5xx,
  HttpPublishes,  // messages published through POST /api/v1/publish(/bulk)
  HttpBytesReceived,
  HttpBytesSent,
  // The Kafka bridge (src/kafka).
  KafkaProduced,        // records Kafka acknowledged
  KafkaProduceRetries,  // records produced again after a failed delivery (async buffer)
  KafkaProduceFailed,   // records Kafka refused for good (too large, not authorized): dropped
  KafkaRefused,         // records not taken: the async buffer was full
  KafkaSyncFailures,    // sync-mode records Kafka did not acknowledge (publisher told)
  KafkaConsumed,        // records read from Kafka and routed to MQTT
  KafkaConsumeSkipped,  // records that could not become an MQTT message (codec, topic)
  // Limits hit (src/net, src/broker): each refusal or eviction counted by the limit.
  LimitConnections,          // [limits] max_connections
  LimitListenerConnections,  // [listeners.NAME] max_connections
  LimitAddressConnections,   // [limits] max_connections_per_address
  LimitConnectionRate,       // [limits] max_connection_rate_per_address
  LimitPacketSize,           // a packet over [mqtt] max_packet_size
  LimitTopic,                // a topic over max_topic_length / max_topic_levels
  LimitSubscriptions,        // a SUBSCRIBE over max_subscriptions_per_client
  LimitPublishRate,          // a publisher paused by max_publish_rate
  LimitSlowClient,           // a client evicted because it did not read its output
  LimitConnectTimeout,
  LimitReceiveMaximum,  // more inbound QoS 2 in flight than [mqtt] receive_maximum (0x93)       //
                        // no CONNECT within connect_timeout_ms
  // Security (src/auth, the stream layers).
  AuthSucceeded,         // clients that proved who they are (password, certificate, SCRAM)
  AuthBadCredentials,    // wrong user name or password, failed SCRAM
  AuthAnonymousRefused,  // no user name where the listener does not allow anonymous
  AuthMethodRefused,     // an enhanced authentication method we do not offer
  AclDeniedPublish,      // PUBLISH (and wills) to a topic the ACL does not allow
  AclDeniedSubscribe,    // SUBSCRIBE to a filter the ACL does not allow
  AclDeniedRead,         // messages not delivered because the receiver may not read them
  // JSON Web Tokens ([auth.jwt]) by outcome, and clients disconnected when theirs expired.
  JwtAccepted,
  JwtExpired,
  JwtNotYetValid,
  JwtBadSignature,
  JwtNoKey,
  JwtMalformed,  // not decodable, or an algorithm other than HS256, RS256, ES256
  JwtExpiredDisconnects,
  JwksRefreshed,        // JWKS documents fetched and taken
  JwksRefreshFailures,  // fetches that failed (the keys in hand stay)
  // The HTTP auth service ([auth.http]) by question and answer.
  HttpAuthConnectAllow,
  HttpAuthConnectDeny,
  HttpAuthConnectIgnore,
  HttpAuthConnectFailed,  // no usable answer: on_error decided
  HttpAuthConnectCached,  // answered from the cache, no request
  HttpAuthAclAllow,
  HttpAuthAclDeny,
  HttpAuthAclIgnore,
  HttpAuthAclFailed,
  HttpAuthAclCached,
  HttpAuthTimeouts,  // requests that ran into timeout_ms (also counted as failed)
  TlsHandshakeFailures,
  WebSocketHandshakeFailures,
  ProxyHeaderFailures,  // a PROXY protocol listener got no valid header
  kCount
};

inline constexpr size_t kCounterCount = static_cast<size_t>(Counter::kCount);

struct alignas(64) CounterShard {
  std::array<std::atomic<uint64_t>, kCounterCount> values{};
  std::array<std::atomic<uint64_t>, 16> packets_in{};   // by packet type
  std::array<std::atomic<uint64_t>, 16> packets_out{};  // by packet type
  std::array<std::atomic<uint64_t>, 16> bytes_in{};     // by packet type, whole frames
};

// The calling thread's shard (created on first use, kept for the process lifetime).
CounterShard& local_shard();

inline void add(Counter c, uint64_t n = 1) {
  local_shard().values[static_cast<size_t>(c)].fetch_add(n, std::memory_order_relaxed);
}
// type: the packet type (its number, or the codec's enum; metrics itself knows no MQTT).
template <typename PacketType>
inline void count_packet_in(PacketType type, uint64_t bytes = 0) {
  const auto index = static_cast<uint8_t>(type) & 15;
  auto& shard = local_shard();
  shard.packets_in[index].fetch_add(1, std::memory_order_relaxed);
  shard.bytes_in[index].fetch_add(bytes, std::memory_order_relaxed);
}
inline void count_packet_out(uint8_t type) {
  local_shard().packets_out[type & 15].fetch_add(1, std::memory_order_relaxed);
}
// With the codec's packet type enum, so callers name the packet (metrics itself knows no MQTT).
template <typename PacketType>
requires std::is_enum_v<PacketType>
inline void count_packet_out(PacketType type) {
  count_packet_out(static_cast<uint8_t>(type));
}

uint64_t total(Counter c);

// Every reason a message is dropped, as /metrics labels it (starling_messages_dropped_total)
// and the HTTP overview and $SYS sum it.
struct DropReason {
  const char* label;
  Counter counter;
};
inline constexpr DropReason kDropReasons[] = {
    {"queue_full", Counter::DroppedQueueFull},
    {"expired", Counter::DroppedExpired},
    {"too_large", Counter::DroppedTooLarge},
    {"offline_qos0", Counter::DroppedOfflineQos0},
    {"session_ended", Counter::DroppedSessionEnded},
    {"no_shared_member", Counter::DroppedNoSharedMember},
};
uint64_t total_dropped();
uint64_t total_packets_in(uint8_t type);
uint64_t total_packets_out(uint8_t type);
uint64_t total_bytes_in(uint8_t type);
const char* name(Counter c);

}  // namespace starling::metrics
