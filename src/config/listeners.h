// [listeners.NAME]: where clients connect and how (TCP or WebSocket, TLS or not).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/endpoint.h"
#include "config/error.h"

namespace starling::config {

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

// The listener of a file that declares none: plain MQTT on 127.0.0.1:1883.
Listener default_listener();

struct Config;
template <typename S>
struct Field;
// The top-level key "listeners", for the loader (config.cc).
Field<Config> listeners_section();

}  // namespace starling::config
