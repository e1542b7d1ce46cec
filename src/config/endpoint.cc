#include "config/endpoint.h"

#include <arpa/inet.h>

#include <stdexcept>
#include <string_view>

#include "config/reader.h"

namespace starling::config {

namespace {

bool is_ipv4_literal(const std::string& host) {
  in_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6_literal(const std::string& host) {
  in6_addr addr;
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

// A DNS name: letters, digits, '-' and '.', labels not starting or ending with '-'.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label_start = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      std::string_view label = host.substr(label_start, i - label_start);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
        return false;
      }
      label_start = i + 1;
      continue;
    }
    char c = host[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

// "::" and "0.0.0.0" may coexist: that is the usual dual-listener setup with IPV6_V6ONLY.
bool binds_collide(const Endpoint& a, const Endpoint& b) {
  if (a.port != b.port) return false;
  if (a.host == b.host) return true;
  auto covers = [](const Endpoint& wild, const Endpoint& other) {
    if (wild.host == "0.0.0.0") return is_ipv4_literal(other.host);
    if (wild.host == "::") return is_ipv6_literal(other.host);
    return false;
  };
  return covers(a, b) || covers(b, a);
}

}  // namespace

Endpoint parse_endpoint(const std::string& text) {
  if (text.empty()) throw std::invalid_argument("empty address, expected host:port");
  std::string host;
  std::string port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) throw std::invalid_argument("missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("expected :port after ']', e.g. [::1]:1883");
    }
    port = text.substr(close + 2);
    if (!is_ipv6_literal(host)) {
      throw std::invalid_argument(quoted(host) + " is not an IPv6 address");
    }
  } else {
    size_t colon = text.find(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("missing :port, e.g. 127.0.0.1:1883 or :1883");
    }
    if (text.find(':', colon + 1) != std::string::npos) {
      throw std::invalid_argument("an IPv6 address needs brackets, e.g. [::1]:1883");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty()) {
      host = "0.0.0.0";  // ":1883" listens on every IPv4 interface
    } else if (host.find_first_not_of("0123456789.") == std::string::npos) {
      if (!is_ipv4_literal(host)) {
        throw std::invalid_argument(quoted(host) + " is not an IPv4 address");
      }
    } else if (!is_host_name(host)) {
      throw std::invalid_argument(quoted(host) + " is not a valid host name or address");
    }
  }
  if (port.empty()) throw std::invalid_argument("missing port number after ':'");
  // Digits only: no sign, no spaces, no hex; at most 5 digits so the value cannot overflow.
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    throw std::invalid_argument("port " + quoted(port) + " is not a number in 0..65535");
  }
  return Endpoint{host, static_cast<uint16_t>(std::stoul(port))};
}

std::string to_string(const Endpoint& e) {
  if (e.host.find(':') != std::string::npos) {
    return "[" + e.host + "]:" + std::to_string(e.port);
  }
  return e.host + ":" + std::to_string(e.port);
}

std::pair<std::string, int> find_bind_collision(const std::vector<BindUse>& uses) {
  for (size_t i = 0; i < uses.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (binds_collide(uses[i].bind, uses[j].bind)) {
        std::string reason = uses[i].what + " " + quoted(to_string(uses[i].bind)) +
                             " collides with " + uses[j].what + " " +
                             quoted(to_string(uses[j].bind));
        if (uses[j].line > 0) reason += " (line " + std::to_string(uses[j].line) + ")";
        return {reason, uses[i].line};
      }
    }
  }
  return {"", 0};
}

}  // namespace starling::config
