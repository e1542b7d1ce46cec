// [http]: the HTTP API (and MQTT over WebSocket on its port): its address, limits and tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/endpoint.h"

namespace starling::config {

// A bearer token of the HTTP API and what it may do: "read" (views, stats, /metrics),
// "publish" (POST /api/v1/publish), "admin" (everything, kicking clients included).
struct ApiToken {
  std::string name;  // [http.tokens.NAME]
  std::string token;
  std::vector<std::string> scopes;
  bool operator==(const ApiToken&) const = default;
};

struct HttpSettings {
  Endpoint bind{"127.0.0.1", 8080};
  bool enabled = true;
  uint64_t max_body_bytes = 1024 * 1024;  // a larger request body is answered 413
  uint32_t max_header_bytes = 16 * 1024;  // request line and headers; larger: 431
  uint32_t idle_timeout_ms = 60000;       // an idle keep-alive connection is closed after it
  uint32_t request_timeout_ms = 30000;    // a request must arrive whole within it (408)
  uint32_t max_connections = 1024;        // 0: no limit
  std::vector<ApiToken> tokens;           // none: the API answers on loopback only
  bool operator==(const HttpSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
// The [http] section, for the loader (config.cc).
Field<Config> http_section();

}  // namespace starling::config
