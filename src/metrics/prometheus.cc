#include "metrics/prometheus.h"

#include <charconv>
#include <string_view>
#include <tuple>

#include "metrics/counters.h"
#include "metrics/histogram.h"

namespace starling::metrics {

namespace {

// The MQTT control packet names by type number (0 and 15 are reserved/AUTH).
constexpr const char* kPacketNames[16] = {"reserved",  "connect",  "connack",     "publish",
                                          "puback",    "pubrec",   "pubrel",      "pubcomp",
                                          "subscribe", "suback",   "unsubscribe", "unsuback",
                                          "pingreq",   "pingresp", "disconnect",  "auth"};

// The bucket bounds as Prometheus "le" labels, matching kBucketBoundsNs.
constexpr const char* kBucketLabels[kBucketCount] = {
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",  "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",   "+Inf"};

void histogram(Writer& w, Histogram h) {
  const HistogramSnapshot s = snapshot(h);
  const std::string name = metrics::name(h);
  w.family(name, "histogram", help(h));
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBucketCount; ++i) {
    cumulative += s.buckets[i];
    w.sample(name + "_bucket", label("le", kBucketLabels[i]), cumulative);
  }
  w.sample(name + "_sum", "", static_cast<double>(s.sum_ns) / 1e9);
  w.sample(name + "_count", "", cumulative);
}

}  // namespace

void Writer::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP starling_";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE starling_";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void Writer::sample(std::string_view name, std::string_view labels, uint64_t value) {
  begin(name, labels);
  number(value);
}

void Writer::sample(std::string_view name, std::string_view labels, int64_t value) {
  begin(name, labels);
  number(value);
}

void Writer::sample(std::string_view name, std::string_view labels, double value) {
  begin(name, labels);
  number(value);
}

template <typename T>
void Writer::number(T value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, end);
  out_ += '\n';
}

void Writer::counter(std::string_view name, std::string_view help, uint64_t value) {
  std::string full = std::string(name) + "_total";
  family(full, "counter", help);
  sample(full, "", value);
}

void Writer::gauge(std::string_view name, std::string_view help, uint64_t value) {
  family(name, "gauge", help);
  sample(name, "", value);
}

void Writer::begin(std::string_view name, std::string_view labels) {
  out_ += "starling_";
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    out_ += labels;
    out_ += '}';
  }
  out_ += ' ';
}

std::string label(std::string_view name, std::string_view value) {
  std::string s(name);
  s += "=\"";
  for (char c : value) {
    if (c == '\\' || c == '"') s += '\\';
    if (c == '\n') {
      s += "\\n";
      continue;
    }
    s += c;
  }
  s += '"';
  return s;
}

std::string render_prometheus(const Gauges& g, const std::string& version) {
  std::string out;
  out.reserve(16 * 1024);
  Writer w(out);

  w.family("build_info", "gauge", "The running version (the value is always 1)");
  w.sample("build_info", label("version", version), uint64_t{1});
  w.family("uptime_seconds", "gauge", "Seconds since the broker started");
  w.sample("uptime_seconds", "", g.uptime_seconds);

  // Connections, by protocol.
  struct ByProtocol {
    const char* name;
    const char* help;
    Counter mqtt;
    Counter http;
  };
  const ByProtocol by_protocol[] = {
      {"connections_accepted_total", "Connections accepted", Counter::ConnectionsAccepted,
       Counter::HttpConnectionsAccepted},
      {"connections_refused_total",
       "Connections refused: CONNACK with a failure code or over a connection limit",
       Counter::ConnectionsRefused, Counter::HttpConnectionsRefused},
      {"bytes_received_total", "Bytes read from sockets", Counter::BytesReceived,
       Counter::HttpBytesReceived},
      {"bytes_sent_total", "Bytes written to sockets", Counter::BytesSent, Counter::HttpBytesSent},
  };
  for (const auto& c : by_protocol) {
    w.family(c.name, "counter", c.help);
    w.sample(c.name, label("protocol", "mqtt"), total(c.mqtt));
    w.sample(c.name, label("protocol", "http"), total(c.http));
  }
  w.counter("connections_closed", "MQTT connections closed", total(Counter::ConnectionsClosed));

  // MQTT packets and their bytes, by type.
  w.family("packets_received_total", "counter", "MQTT control packets received, by type");
  for (uint8_t t = 1; t < 16; ++t) {
    w.sample("packets_received_total", label("type", kPacketNames[t]), total_packets_in(t));
  }
  w.family("packets_sent_total", "counter", "MQTT control packets sent, by type");
  for (uint8_t t = 1; t < 16; ++t) {
    w.sample("packets_sent_total", label("type", kPacketNames[t]), total_packets_out(t));
  }
  w.family("packet_bytes_received_total", "counter",
           "Bytes of whole MQTT control packets received, by type");
  for (uint8_t t = 1; t < 16; ++t) {
    w.sample("packet_bytes_received_total", label("type", kPacketNames[t]), total_bytes_in(t));
  }

  // Messages.
  w.counter("messages_received", "PUBLISH packets received from clients",
            total(Counter::MessagesReceived));
  w.counter("messages_sent", "PUBLISH packets sent to clients", total(Counter::MessagesSent));
  w.counter("messages_routed", "Publishes that matched at least one subscriber",
            total(Counter::MessagesRouted));
  w.counter("messages_no_subscriber", "Publishes that matched no subscriber",
            total(Counter::MessagesNoSubscriber));
  w.counter("messages_queued", "Deliveries that waited in a session queue",
            total(Counter::MessagesQueued));
  w.family("messages_dropped_total", "counter", "Messages dropped, by reason");
  for (const DropReason& r : kDropReasons) {
    w.sample("messages_dropped_total", label("reason", r.label), total(r.counter));
  }
  w.counter("publishers_throttled", "Times a publisher was paused by a full receiver queue",
            total(Counter::PublishersThrottled));
  w.counter("protocol_errors", "Connections closed for a protocol violation",
            total(Counter::ProtocolErrors));
  w.counter("keepalive_timeouts", "Connections closed for a missed keep alive",
            total(Counter::KeepAliveTimeouts));

  // Limits and security.
  w.family("limit_hits_total", "counter",
           "Connections refused or closed, packets refused and clients paused by a limit");
  const std::pair<const char*, Counter> limits[] = {
      {"max_connections", Counter::LimitConnections},
      {"listener_max_connections", Counter::LimitListenerConnections},
      {"max_connections_per_address", Counter::LimitAddressConnections},
      {"max_connection_rate_per_address", Counter::LimitConnectionRate},
      {"max_packet_size", Counter::LimitPacketSize},
      {"max_topic", Counter::LimitTopic},
      {"max_subscriptions_per_client", Counter::LimitSubscriptions},
      {"max_publish_rate", Counter::LimitPublishRate},
      {"slow_client", Counter::LimitSlowClient},
      {"connect_timeout", Counter::LimitConnectTimeout},
      {"receive_maximum", Counter::LimitReceiveMaximum},
  };
  for (const auto& [limit, c] : limits) {
    w.sample("limit_hits_total", label("limit", limit), total(c));
  }
  w.family("auth_total", "counter", "CONNECT authentication outcomes");
  const std::pair<const char*, Counter> auth[] = {
      {"success", Counter::AuthSucceeded},
      {"bad_credentials", Counter::AuthBadCredentials},
      {"anonymous_refused", Counter::AuthAnonymousRefused},
      {"method_refused", Counter::AuthMethodRefused},
  };
  for (const auto& [result, c] : auth) {
    w.sample("auth_total", label("result", result), total(c));
  }
  w.family("acl_denied_total", "counter", "Actions the ACL file denied, by action");
  w.sample("acl_denied_total", label("action", "publish"), total(Counter::AclDeniedPublish));
  w.sample("acl_denied_total", label("action", "subscribe"), total(Counter::AclDeniedSubscribe));
  w.sample("acl_denied_total", label("action", "read"), total(Counter::AclDeniedRead));
  w.family("auth_jwt_total", "counter", "JSON Web Tokens presented at CONNECT, by outcome");
  const std::pair<const char*, Counter> jwt[] = {
      {"accepted", Counter::JwtAccepted},
      {"expired", Counter::JwtExpired},
      {"not_yet_valid", Counter::JwtNotYetValid},
      {"bad_signature", Counter::JwtBadSignature},
      {"no_key", Counter::JwtNoKey},
      {"malformed", Counter::JwtMalformed},
  };
  for (const auto& [result, c] : jwt) {
    w.sample("auth_jwt_total", label("result", result), total(c));
  }
  w.counter("auth_jwt_expired_disconnects",
            "Connected clients disconnected (0xA0) when their token expired",
            total(Counter::JwtExpiredDisconnects));
  w.family("auth_jwks_refresh_total", "counter", "JWKS fetches, by result");
  w.sample("auth_jwks_refresh_total", label("result", "ok"), total(Counter::JwksRefreshed));
  w.sample("auth_jwks_refresh_total", label("result", "failed"),
           total(Counter::JwksRefreshFailures));
  w.family("auth_http_total", "counter",
           "Questions to the HTTP auth service, by question and answer (cached: from the cache)");
  const std::tuple<const char*, const char*, Counter> http_auth[] = {
      {"connect", "allow", Counter::HttpAuthConnectAllow},
      {"connect", "deny", Counter::HttpAuthConnectDeny},
      {"connect", "ignore", Counter::HttpAuthConnectIgnore},
      {"connect", "failed", Counter::HttpAuthConnectFailed},
      {"connect", "cached", Counter::HttpAuthConnectCached},
      {"acl", "allow", Counter::HttpAuthAclAllow},
      {"acl", "deny", Counter::HttpAuthAclDeny},
      {"acl", "ignore", Counter::HttpAuthAclIgnore},
      {"acl", "failed", Counter::HttpAuthAclFailed},
      {"acl", "cached", Counter::HttpAuthAclCached},
  };
  for (const auto& [question, answer, c] : http_auth) {
    w.sample("auth_http_total", label("question", question) + "," + label("answer", answer),
             total(c));
  }
  w.counter("auth_http_timeouts", "HTTP auth requests that ran into timeout_ms",
            total(Counter::HttpAuthTimeouts));
  w.family("handshake_failures_total", "counter",
           "Connections closed in a TLS, WebSocket or PROXY protocol handshake");
  w.sample("handshake_failures_total", label("layer", "tls"), total(Counter::TlsHandshakeFailures));
  w.sample("handshake_failures_total", label("layer", "websocket"),
           total(Counter::WebSocketHandshakeFailures));
  w.sample("handshake_failures_total", label("layer", "proxy"),
           total(Counter::ProxyHeaderFailures));

  // HTTP.
  w.counter("http_requests", "HTTP requests read", total(Counter::HttpRequests));
  w.family("http_responses_total", "counter", "HTTP responses, by status class");
  w.sample("http_responses_total", label("class", "2xx"), total(Counter::HttpResponses2xx));
  w.sample("http_responses_total", label("class", "4xx"), total(Counter::HttpResponses4xx));
  w.sample("http_responses_total", label("class", "5xx"), total(Counter::HttpResponses5xx));
  w.counter("http_publishes", "Messages published through the HTTP API",
            total(Counter::HttpPublishes));

  // Kafka bridge.
  w.counter("kafka_produced", "Records Kafka acknowledged", total(Counter::KafkaProduced));
  w.counter("kafka_produce_retries", "Records produced again after a failed delivery",
            total(Counter::KafkaProduceRetries));
  w.counter("kafka_produce_failed",
            "Records Kafka refused for good (dropped, logged): too large, not authorized",
            total(Counter::KafkaProduceFailed));
  w.counter("kafka_refused", "Records not taken because the bridge buffer was full",
            total(Counter::KafkaRefused));
  w.counter("kafka_sync_failures",
            "Sync-mode records Kafka did not acknowledge (the publisher got an error)",
            total(Counter::KafkaSyncFailures));
  w.counter("kafka_consumed", "Kafka records routed to MQTT", total(Counter::KafkaConsumed));
  w.counter("kafka_consume_skipped",
            "Kafka records that could not become an MQTT message (codec, topic), committed",
            total(Counter::KafkaConsumeSkipped));

  // Gauges from the broker.
  w.gauge("clients_connected", "MQTT clients connected",
          static_cast<uint64_t>(g.clients_connected > 0 ? g.clients_connected : 0));
  w.gauge("sessions", "Sessions, connected or not", g.sessions);
  w.gauge("subscriptions", "Subscriptions, shared memberships included", g.subscriptions);
  w.gauge("retained_messages", "Retained messages", g.retained_messages);
  w.gauge("queued_messages", "Messages waiting in session queues", g.queued_messages);
  w.gauge("inflight_messages", "QoS 1/2 messages sent and not yet acknowledged",
          g.inflight_messages);
  w.gauge("max_queue_depth", "The longest session queue", g.max_queue_depth);
  w.gauge("http_connections", "Open HTTP connections", g.http_connections);
  w.gauge("store_open", "1 when the durable store is open", g.store_open ? 1 : 0);
  w.counter("store_commits", "Batches written to the store", g.store_commits);
  w.counter("store_syncs", "Write-ahead log syncs of the store", g.store_syncs);

  // Latency histograms.
  for (size_t h = 0; h < kHistogramCount; ++h) {
    histogram(w, static_cast<Histogram>(h));
  }
  return out;
}

}  // namespace starling::metrics
