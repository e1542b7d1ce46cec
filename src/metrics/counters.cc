#include "metrics/counters.h"

#include <deque>
#include <mutex>

namespace starling::metrics {

namespace {
std::mutex g_shards_mutex;
std::deque<CounterShard>& shards() {
  static std::deque<CounterShard> all;  // deque: shards never move once handed out
  return all;
}

template <typename F>
uint64_t sum(F&& get) {
  std::lock_guard lock(g_shards_mutex);
  uint64_t total = 0;
  for (auto& shard : shards())
    total += get(shard).load(std::memory_order_relaxed);
  return total;
}
}  // namespace

CounterShard& local_shard() {
  thread_local CounterShard* shard = [] {
    std::lock_guard lock(g_shards_mutex);
    return &shards().emplace_back();
  }();
  return *shard;
}

uint64_t total(Counter c) {
  return sum([c](CounterShard & s) -> auto& { return s.values[static_cast<size_t>(c)]; });
}
uint64_t total_packets_in(uint8_t type) {
  return sum([type](CounterShard & s) -> auto& { return s.packets_in[type & 15]; });
}
uint64_t total_packets_out(uint8_t type) {
  return sum([type](CounterShard & s) -> auto& { return s.packets_out[type & 15]; });
}
uint64_t total_bytes_in(uint8_t type) {
  return sum([type](CounterShard & s) -> auto& { return s.bytes_in[type & 15]; });
}

uint64_t total_dropped() {
  uint64_t n = 0;
  for (const DropReason& r : kDropReasons)
    n += total(r.counter);
  return n;
}

const char* name(Counter c) {
  switch (c) {
    case Counter::ConnectionsAccepted:
      return "connections_accepted";
    case Counter::ConnectionsRefused:
      return "connections_refused";
    case Counter::ConnectionsClosed:
      return "connections_closed";
    case Counter::MessagesReceived:
      return "messages_received";
    case Counter::MessagesSent:
      return "messages_sent";
    case Counter::MessagesRouted:
      return "messages_routed";
    case Counter::MessagesNoSubscriber:
      return "messages_no_subscriber";
    case Counter::BytesReceived:
      return "bytes_received";
    case Counter::BytesSent:
      return "bytes_sent";
    case Counter::DroppedQueueFull:
      return "dropped_queue_full";
    case Counter::DroppedExpired:
      return "dropped_expired";
    case Counter::DroppedTooLarge:
      return "dropped_too_large";
    case Counter::DroppedOfflineQos0:
      return "dropped_offline_qos0";
    case Counter::DroppedSessionEnded:
      return "dropped_session_ended";
    case Counter::DroppedNoSharedMember:
      return "dropped_no_shared_member";
    case Counter::ProtocolErrors:
      return "protocol_errors";
    case Counter::KeepAliveTimeouts:
      return "keepalive_timeouts";
    case Counter::PublishersThrottled:
      return "publishers_throttled";
    case Counter::MessagesQueued:
      return "messages_queued";
    case Counter::HttpConnectionsAccepted:
      return "http_connections_accepted";
    case Counter::HttpConnectionsRefused:
      return "http_connections_refused";
    case Counter::HttpRequests:
      return "http_requests";
    case Counter::HttpResponses2xx:
      return "http_responses_2xx";
    case Counter::HttpResponses4xx:
      return "http_responses_4xx";
    case Counter::HttpResponses5xx:
      return "http_responses_5xx";
    case Counter::HttpPublishes:
      return "http_publishes";
    case Counter::HttpBytesReceived:
      return "http_bytes_received";
    case Counter::HttpBytesSent:
      return "http_bytes_sent";
    case Counter::KafkaProduced:
      return "kafka_produced";
    case Counter::KafkaProduceRetries:
      return "kafka_produce_retries";
    case Counter::KafkaProduceFailed:
      return "kafka_produce_failed";
    case Counter::KafkaRefused:
      return "kafka_refused";
    case Counter::KafkaSyncFailures:
      return "kafka_sync_failures";
    case Counter::KafkaConsumed:
      return "kafka_consumed";
    case Counter::KafkaConsumeSkipped:
      return "kafka_consume_skipped";
    case Counter::LimitConnections:
      return "limit_connections";
    case Counter::LimitListenerConnections:
      return "limit_listener_connections";
    case Counter::LimitAddressConnections:
      return "limit_address_connections";
    case Counter::LimitConnectionRate:
      return "limit_connection_rate";
    case Counter::LimitPacketSize:
      return "limit_packet_size";
    case Counter::LimitTopic:
      return "limit_topic";
    case Counter::LimitSubscriptions:
      return "limit_subscriptions";
    case Counter::LimitPublishRate:
      return "limit_publish_rate";
    case Counter::LimitSlowClient:
      return "limit_slow_client";
    case Counter::LimitConnectTimeout:
      return "limit_connect_timeout";
    case Counter::LimitReceiveMaximum:
      return "limit_receive_maximum";
    case Counter::AuthSucceeded:
      return "auth_succeeded";
    case Counter::AuthBadCredentials:
      return "auth_bad_credentials";
    case Counter::AuthAnonymousRefused:
      return "auth_anonymous_refused";
    case Counter::AuthMethodRefused:
      return "auth_method_refused";
    case Counter::AclDeniedPublish:
      return "acl_denied_publish";
    case Counter::AclDeniedSubscribe:
      return "acl_denied_subscribe";
    case Counter::AclDeniedRead:
      return "acl_denied_read";
    case Counter::JwtAccepted:
      return "jwt_accepted";
    case Counter::JwtExpired:
      return "jwt_expired";
    case Counter::JwtNotYetValid:
      return "jwt_not_yet_valid";
    case Counter::JwtBadSignature:
      return "jwt_bad_signature";
    case Counter::JwtNoKey:
      return "jwt_no_key";
    case Counter::JwtMalformed:
      return "jwt_malformed";
    case Counter::JwtExpiredDisconnects:
      return "jwt_expired_disconnects";
    case Counter::JwksRefreshed:
      return "jwks_refreshed";
    case Counter::JwksRefreshFailures:
      return "jwks_refresh_failures";
    case Counter::HttpAuthConnectAllow:
      return "http_auth_connect_allow";
    case Counter::HttpAuthConnectDeny:
      return "http_auth_connect_deny";
    case Counter::HttpAuthConnectIgnore:
      return "http_auth_connect_ignore";
    case Counter::HttpAuthConnectFailed:
      return "http_auth_connect_failed";
    case Counter::HttpAuthConnectCached:
      return "http_auth_connect_cached";
    case Counter::HttpAuthAclAllow:
      return "http_auth_acl_allow";
    case Counter::HttpAuthAclDeny:
      return "http_auth_acl_deny";
    case Counter::HttpAuthAclIgnore:
      return "http_auth_acl_ignore";
    case Counter::HttpAuthAclFailed:
      return "http_auth_acl_failed";
    case Counter::HttpAuthAclCached:
      return "http_auth_acl_cached";
    case Counter::HttpAuthTimeouts:
      return "http_auth_timeouts";
    case Counter::TlsHandshakeFailures:
      return "tls_handshake_failures";
    case Counter::WebSocketHandshakeFailures:
      return "websocket_handshake_failures";
    case Counter::ProxyHeaderFailures:
      return "proxy_header_failures";
    case Counter::kCount:
      break;
  }
  return "unknown";
}

}  // namespace starling::metrics
