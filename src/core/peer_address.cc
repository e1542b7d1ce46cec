#include "core/peer_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>
#include <deque>
#include <mutex>

namespace starling::core {

namespace {

// Names that are not addresses, each kept once for the life of the process.
class NameTable {
 public:
  static NameTable& instance() {
    static NameTable table;
    return table;
  }
  // The index of name, added if new; kMaxNames when the table is full.
  uint32_t index(std::string_view name) {
    std::lock_guard lock(mutex_);
    for (uint32_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return i;
    if (names_.size() >= PeerAddress::kMaxNames) return PeerAddress::kMaxNames;
    names_.emplace_back(name);
    return static_cast<uint32_t>(names_.size() - 1);
  }
  std::string name(uint32_t index) {
    std::lock_guard lock(mutex_);
    return index < names_.size() ? names_[index] : "?";
  }

 private:
  std::mutex mutex_;
  std::deque<std::string> names_;
};

bool parse_port(std::string_view text, uint16_t& port) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

PeerAddress::PeerAddress(std::string_view text) {
  if (text.empty()) return;
  char host[64];
  if (text.front() == '[') {
    const size_t close = text.find("]:");
    if (close != std::string_view::npos && close - 1 < sizeof host &&
        parse_port(text.substr(close + 2), port_)) {
      std::memcpy(host, text.data() + 1, close - 1);
      host[close - 1] = '\0';
      if (inet_pton(AF_INET6, host, bytes_.data()) == 1) {
        kind_ = Kind::V6;
        return;
      }
    }
  } else if (const size_t colon = text.rfind(':'); colon != std::string_view::npos &&
                                                   colon < sizeof host &&
                                                   parse_port(text.substr(colon + 1), port_)) {
    std::memcpy(host, text.data(), colon);
    host[colon] = '\0';
    if (inet_pton(AF_INET, host, bytes_.data()) == 1) {
      kind_ = Kind::V4;
      return;
    }
  }
  bytes_ = {};
  port_ = 0;
  const uint32_t index = NameTable::instance().index(text);
  std::memcpy(bytes_.data(), &index, sizeof index);
  kind_ = Kind::Name;
}

std::string PeerAddress::host() const {
  char text[INET6_ADDRSTRLEN] = {0};
  switch (kind_) {
    case Kind::None:
      return {};
    case Kind::V4:
      inet_ntop(AF_INET, bytes_.data(), text, sizeof text);
      return text;
    case Kind::V6:
      inet_ntop(AF_INET6, bytes_.data(), text, sizeof text);
      return text;
    case Kind::Name:
      break;
  }
  uint32_t index = 0;
  std::memcpy(&index, bytes_.data(), sizeof index);
  return NameTable::instance().name(index);
}

std::string PeerAddress::to_string() const {
  if (kind_ != Kind::V4 && kind_ != Kind::V6) return host();
  // Appended piece by piece: g++ 12 at -O3 reports a false -Wrestrict on operator+ chains.
  std::string out;
  out.reserve(INET6_ADDRSTRLEN + 8);
  if (kind_ == Kind::V6) out.push_back('[');
  out.append(host());
  out.append(kind_ == Kind::V6 ? "]:" : ":");
  out.append(std::to_string(port_));
  return out;
}

}  // namespace starling::core
