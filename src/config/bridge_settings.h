// [[bridges]]: connections to other MQTT brokers (Mosquitto, EMQX, another Starling) that carry
// messages out, in or both ways, with the topic rules of Mosquitto's bridge
// (`topic pattern direction qos local-prefix remote-prefix`). See docs/bridges.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/error.h"

namespace starling::config {

// [[bridges.topics]]: which messages cross, and how their topics change on the way.
struct BridgeTopic {
  std::string pattern = "#";      // a filter; "" with prefixes that are whole topics
  std::string direction = "out";  // "out" (to the remote), "in" (from it), "both"
  uint8_t qos = 1;                // the subscriptions' QoS on each side: the most a message keeps
  std::string local_prefix;       // prepended here ...
  std::string remote_prefix;      // ... and there
  SourceLine line;
  bool out() const { return direction != "in"; }
  bool in() const { return direction != "out"; }
  // The filters of the subscriptions on each side.
  std::string local_filter() const { return local_prefix + pattern; }
  std::string remote_filter() const { return remote_prefix + pattern; }
  bool operator==(const BridgeTopic&) const = default;
};

struct BridgeAddress {
  std::string host;  // name or address (IPv6 in brackets in the file: "[::1]:1883")
  uint16_t port = 1883;
  bool operator==(const BridgeAddress&) const = default;
};

struct BridgeSettings {
  std::string name;                      // letters, digits, '_', '-': in views and metrics
  std::vector<BridgeAddress> addresses;  // tried in turn
  std::string protocol = "5.0";          // "3.1.1" or "5.0"
  std::string client_id;                 // at the remote; "" = "<hostname>.<name>"
  std::string username;                  // at the remote; "" = none
  std::string password;
  uint16_t keep_alive = 60;             // seconds
  bool clean_start = false;             // false: the remote keeps our session while we are away
  uint32_t session_expiry = 86400;      // 5.0: how long the remote keeps it (seconds)
  bool try_private = true;              // 3.1.1: protocol level | 0x80 (Mosquitto's bridge flag)
  uint32_t reconnect_min_ms = 1000;     // backoff after a failed attempt, doubling ...
  uint32_t reconnect_max_ms = 30000;    // ... up to this
  uint32_t connect_timeout_ms = 10000;  // TCP, TLS and CONNACK
  // The local identity incoming messages are published under ([auth] acl_file rules for this
  // user name and the client id "$bridge/<name>"); "" = anonymous.
  std::string local_username;
  // Outgoing messages waiting for the remote (0: the [limits] values).
  uint32_t max_queued_messages = 0;
  uint64_t max_queued_bytes = 0;
  // TLS to the remote.
  bool tls = false;
  std::string tls_ca;    // PEM CA file; "" = the system's CAs
  std::string tls_cert;  // client certificate (PEM), with tls_key
  std::string tls_key;
  std::string tls_server_name;  // SNI and the name checked in the certificate; "" = the host
  bool tls_verify = true;       // false: no certificate check at all (testing only)
  std::vector<BridgeTopic> topics;
  SourceLine line;
  // The id the local session has: real clients cannot take it.
  std::string local_client_id() const { return "$bridge/" + name; }
  bool operator==(const BridgeSettings&) const = default;
};

// Client ids starting with this are the bridges' own sessions.
inline constexpr char kBridgeClientIdPrefix[] = "$bridge/";

struct Config;
template <typename S>
struct Field;
// The [[bridges]] array, for the loader (config.cc).
Field<Config> bridges_section();

}  // namespace starling::config
