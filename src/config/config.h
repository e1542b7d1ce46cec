// Starling's configuration: one TOML file, every key with a default, validated at load.
// An unknown key or a bad value is an error that names the file, the line and the reason.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace starling::config {

struct Endpoint {
  std::string host = "127.0.0.1";  // IPv4 or IPv6 literal, or a host name ("localhost")
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

// "127.0.0.1:1883", "[::1]:1883", "0.0.0.0:1883", ":1883" (all IPv4 interfaces).
// Throws std::invalid_argument with a reason.
Endpoint parse_endpoint(const std::string& text);
std::string to_string(const Endpoint& e);

// Where something was declared in the file, for errors found after loading. Never part of a
// comparison: moving a table in the file changes nothing.
struct SourceLine {
  int value = 0;
  bool operator==(const SourceLine&) const { return true; }
};

// [listeners.NAME]: where clients connect and how (TCP or WebSocket, TLS or not).
struct Listener {
  std::string name;
  Endpoint bind;
  std::string protocol = "mqtt";  // "mqtt" (MQTT over TCP) | "ws" (MQTT over WebSocket)
  std::string ws_path = "/mqtt";  // the WebSocket listener's request path
  std::vector<std::string> ws_allowed_origins;  // empty: any Origin (browsers send one)
  // TLS: on when tls_cert is set (and then tls_key is required).
  std::string tls_cert;  // PEM: the certificate chain, leaf first
  std::string tls_key;   // PEM: its private key
  std::string tls_ca;    // PEM: CAs that client certificates are verified against
  bool require_client_cert = false;
  bool username_from_cert = false;      // the client certificate's CN is the user name
  std::string tls_min_version = "1.2";  // "1.2" | "1.3"
  std::string tls_ciphers;              // TLS 1.2 cipher list (OpenSSL syntax); "": defaults
  std::string tls_ciphersuites;         // TLS 1.3 suites; "": defaults
  // Anonymous clients (no user name, no certificate identity). Unset: allowed unless
  // [auth] password_file is set.
  std::optional<bool> allow_anonymous;
  bool proxy_protocol = false;   // the first bytes are a PROXY protocol v1/v2 header
  uint32_t max_connections = 0;  // on this listener; 0: no limit
  SourceLine line;               // where [listeners.NAME] is in the file, for errors found later
  bool tls() const { return !tls_cert.empty(); }
  bool operator==(const Listener&) const = default;
};

// [auth]: who may connect and what they may do.
struct AuthSettings {
  std::string password_file;  // mosquitto_passwd format ($7$, $6$) or starling passwd --scram
  std::string acl_file;       // Mosquitto's acl_file format
  bool operator==(const AuthSettings&) const = default;
};

struct MqttSettings {
  uint32_t max_packet_size = 1024 * 1024;  // bytes; inbound limit, advertised in CONNACK (5.0)
  uint16_t receive_maximum = 1024;         // inbound QoS 1/2 in flight per client
  uint16_t max_inflight = 256;             // outbound cap (also bounded by the client's)
  uint16_t topic_alias_maximum = 64;       // inbound aliases we accept per connection
  uint8_t max_qos = 2;
  bool retain_available = true;
  bool wildcard_subscriptions = true;
  bool shared_subscriptions = true;
  bool subscription_identifiers = true;
  uint16_t max_keep_alive = 65535;           // seconds; larger requests are lowered (5.0)
  uint32_t max_session_expiry = 0xFFFFFFFF;  // seconds
  bool allow_empty_client_id = true;         // assign one (5.0 and 3.1.1 clean session)
  uint32_t retry_interval_ms = 0;            // 0: resend only on reconnect, as the spec asks
  // Response Information (5.0) for a client that sets Request Response Information: the basis
  // of its response topics. Empty: none is sent.
  std::string response_information;
  bool operator==(const MqttSettings&) const = default;
};

struct Limits {
  uint32_t max_queued_messages = 10000;     // per session, QoS 1/2 waiting to be sent
  uint64_t max_queued_bytes = 64ull << 20;  // per session
  // Queued messages of a persistent session kept in memory; the rest wait in the store and
  // are read back in pages as the queue drains (durability batch/always only).
  uint32_t queue_resident_messages = 1000;
  uint64_t max_out_buffer_bytes = 8ull << 20;  // per connection; QoS 0 beyond it is dropped
  uint32_t max_connections = 0;                // 0: no limit
  uint32_t max_topic_length = 65535;
  uint32_t max_topic_levels = 128;
  uint32_t max_subscriptions_per_client = 0;  // 0: no limit
  uint32_t max_client_id_length = 65535;
  uint32_t connect_timeout_ms = 10000;           // a CONNECT must arrive within this
  uint32_t max_connections_per_address = 0;      // per source IP address; 0: no limit
  uint32_t max_connection_rate_per_address = 0;  // new connections per second per IP; 0: none
  uint32_t max_publish_rate = 0;  // PUBLISH packets per second per client; 0: no limit
  // A client whose output waits this long with the socket full (it does not read) is closed.
  uint32_t slow_client_timeout_ms = 60000;
  bool operator==(const Limits&) const = default;
};

// A bearer token of the HTTP API and what it may do: "read" (views, stats, /metrics),
// "publish" (POST /api/v1/publish), "admin" (everything, kicking clients included).
struct ApiToken {
  std::string name;  // [http.tokens.NAME]
  std::string token;
  std::vector<std::string> scopes;
  bool operator==(const ApiToken&) const = default;
};

// The HTTP server's limits and tokens ([http]; bind and enabled are in Config).
struct HttpSettings {
  uint64_t max_body_bytes = 1024 * 1024;  // a larger request body is answered 413
  uint32_t max_header_bytes = 16 * 1024;  // request line and headers; larger: 431
  uint32_t idle_timeout_ms = 60000;       // an idle keep-alive connection is closed after it
  uint32_t request_timeout_ms = 30000;    // a request must arrive whole within it (408)
  uint32_t max_connections = 1024;        // 0: no limit
  std::vector<ApiToken> tokens;           // none: the API answers on loopback only
  bool operator==(const HttpSettings&) const = default;
};

// [[kafka.produce]]: MQTT (and HTTP) publishes matching filter go to a Kafka topic.
struct KafkaProduceRule {
  std::string filter;              // MQTT topic filter
  std::string topic;               // Kafka topic template ({topic}, {topic[N]}, {clientid}, ...)
  std::string key = "{clientid}";  // key template; "" sends records without a key
  // MQTT attributes sent as Kafka headers: topic, clientid, username, qos, retain,
  // content_type, user_properties.
  std::vector<std::string> headers = {"topic",    "qos",          "retain",         "clientid",
                                      "username", "content_type", "user_properties"};
  std::string partitioner;     // "": librdkafka's default; a librdkafka name or "key-hash"
  std::string mode = "async";  // "async": ack on acceptance; "sync": ack after Kafka's ack
  int line = 0;                // where the rule was declared, for logs
  bool operator==(const KafkaProduceRule&) const = default;
};

// [[kafka.consume]]: Kafka records of topics go to MQTT subscribers.
struct KafkaConsumeRule {
  std::vector<std::string> topics;           // names, or regexes starting with '^'
  std::string group = "starling";            // consumer group
  std::string offset_reset = "latest";       // where a group without offsets starts
  std::string mqtt_topic = "{kafka_topic}";  // template ({kafka_topic}, {key}, {partition}, ...)
  uint8_t qos = 1;
  bool retain = false;
  bool user_properties = true;  // Kafka headers become MQTT 5 user properties
  std::string codec = "none";   // "none" (pass-through) | "avro-confluent"
  int line = 0;
  bool operator==(const KafkaConsumeRule&) const = default;
};

using PropertyList = std::vector<std::pair<std::string, std::string>>;

struct KafkaSettings {
  std::string bootstrap;  // bootstrap.servers
  bool mock = false;      // start librdkafka's mock cluster in the broker (trying things out)
  uint32_t mock_brokers = 1;
  std::string schema_registry;  // URL of the Confluent Schema Registry (codec avro-confluent)
  uint32_t schema_registry_timeout_ms = 5000;
  // The async buffer: records accepted and not yet acknowledged by Kafka. Publishers are
  // paused from 80% of it; past it, records are refused (counted, and said to the publisher).
  uint64_t buffer_max_messages = 100000;
  uint64_t buffer_max_bytes = 256ull << 20;
  PropertyList properties;           // [kafka.properties]: every client (librdkafka names)
  PropertyList producer_properties;  // [kafka.producer_properties]
  PropertyList consumer_properties;  // [kafka.consumer_properties]
  std::vector<KafkaProduceRule> produce;
  std::vector<KafkaConsumeRule> consume;
  bool enabled() const { return !produce.empty() || !consume.empty(); }
  bool operator==(const KafkaSettings&) const = default;
};

struct Config {
  std::string source;               // file the config came from ("" = built-in defaults)
  std::vector<Listener> listeners;  // default: one "mqtt" listener on 127.0.0.1:1883
  Endpoint http{"127.0.0.1", 8080};
  bool http_enabled = true;
  HttpSettings http_settings;
  std::string data_dir = "data";
  std::string durability = "batch";  // "none" | "batch" | "always"
  unsigned threads = 0;              // 0: one per core
  std::string log_level = "info";    // trace debug info warn error critical off
  uint32_t sys_interval_s = 10;      // $SYS publish interval; 0 disables
  MqttSettings mqtt;
  Limits limits;
  AuthSettings auth;
  KafkaSettings kafka;
  // Whether a listener lets clients in without a user name or certificate identity.
  bool allows_anonymous(const Listener& l) const {
    return l.allow_anonymous.value_or(auth.password_file.empty());
  }
};

// A config error with the place it was found. what() is "file:line: reason".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, int line, const std::string& reason);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string file_;
  int line_;
  std::string reason_;
};

Config defaults();

// Loads and validates a TOML file on top of the defaults. Throws ConfigError.
Config load_file(const std::string& path);
// The same from text (path is used in messages only). Throws ConfigError.
Config load_string(const std::string& text, const std::string& path);

// Command-line overrides, applied after the file.
struct Overrides {
  std::optional<std::string> bind;  // replaces the first MQTT listener's bind
  std::optional<std::string> http;  // "off" disables HTTP
  std::optional<std::string> data_dir;
  std::optional<unsigned> threads;
  std::optional<std::string> log_level;
};
// Throws ConfigError (file "command line", line 0).
void apply_overrides(Config& config, const Overrides& overrides);

// Settings that may change on SIGHUP without a restart. Returns the names of the settings that
// changed but need a restart (listeners, threads, data dir, ...), for the log.
std::vector<std::string> reload_into(Config& live, const Config& fresh);

}  // namespace starling::config
