// A connection's peer as the broker keeps it: an IPv4 or IPv6 address and port in 20 bytes, made
// text only when shown. Every connection and every session holds one, and the text form
// ("192.168.100.200:54321") would cost a 32-byte string plus, past 15 characters, an allocation.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace starling::core {

class PeerAddress {
 public:
  PeerAddress() = default;  // none: shown as ""
  // From "1.2.3.4:5" or "[::1]:5", the forms the listeners and the PROXY layer make. Any other
  // text (a bridge's remote name) is kept as a name in a process-wide table: there are a
  // handful of those, and past kMaxNames a new one is shown as "?".
  explicit PeerAddress(std::string_view text);

  bool empty() const { return kind_ == Kind::None; }
  std::string to_string() const;  // as given
  // The address without the port (for the per-address limits); a name as it is.
  std::string host() const;
  bool operator==(const PeerAddress&) const = default;

  static constexpr uint32_t kMaxNames = 1024;

 private:
  enum class Kind : uint8_t { None, V4, V6, Name };
  std::array<uint8_t, 16> bytes_{};  // V4: the first 4; Name: the table index
  uint16_t port_ = 0;
  Kind kind_ = Kind::None;
};

}  // namespace starling::core
