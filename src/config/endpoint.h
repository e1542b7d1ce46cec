// Addresses in the config: the binds of listeners and of the HTTP server, and the check that no
// two of them would take the same port.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
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

// A bind and where it came from, for collision errors.
struct BindUse {
  std::string what;  // "listeners.mqtt.bind", "http.bind"
  Endpoint bind;
  int line = 0;  // of the bind in the file; 0: a default or the command line
};

// The reason for the first bind that collides with an earlier one, and that bind's line; an
// empty reason when they are all distinct. Two binds collide if they are equal, or if one is
// the wildcard of the other's address family on the same port (Linux refuses that pair).
std::pair<std::string, int> find_bind_collision(const std::vector<BindUse>& uses);

}  // namespace starling::config
