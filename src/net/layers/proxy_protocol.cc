#include "net/layers/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/text.h"

namespace starling::net {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature{"\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12};
constexpr size_t kV2FixedBytes = 16;
constexpr char kExpected[] = "PROXY protocol header expected";

ProxyHeader need_more() {
  return {};
}

ProxyHeader failed(std::string reason) {
  ProxyHeader h;
  h.status = ProxyHeader::Status::Error;
  h.error = std::move(reason);
  return h;
}

ProxyHeader done(size_t size, std::optional<std::string> source) {
  ProxyHeader h;
  h.status = ProxyHeader::Status::Done;
  h.size = size;
  h.source = std::move(source);
  return h;
}

bool is_prefix_of(std::string_view data, std::string_view whole) {
  return whole.substr(0, data.size()) == data;
}

// Appended piece by piece: g++ 12 at -O3 (Release) reports a false -Wrestrict overlap (GCC
// bug 105329) for `"[" + std::string(host)`, which broke the Release build.
std::string format_address(int family, const void* address, uint16_t port) {
  char host[INET6_ADDRSTRLEN] = {0};
  inet_ntop(family, address, host, sizeof host);
  std::string text;
  if (family == AF_INET6) text += '[';
  text += host;
  if (family == AF_INET6) text += ']';
  text += ':';
  text += std::to_string(port);
  return text;
}

// Decimal 0..65535 without leading zeros, as the spec writes ports.
std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

ProxyHeader parse_v1(std::string_view data) {
  const size_t window = std::min(data.size(), kMaxProxyV1Bytes);
  const size_t eol = data.substr(0, window).find_first_of("\r\n");
  if (eol == std::string_view::npos) {
    if (data.size() >= kMaxProxyV1Bytes) {
      return failed("PROXY v1 header longer than " + std::to_string(kMaxProxyV1Bytes) + " bytes");
    }
    return need_more();
  }
  if (data[eol] != '\r') return failed("PROXY v1 header not ended by CRLF");
  if (eol + 1 == data.size()) {
    if (eol + 2 > kMaxProxyV1Bytes) {
      return failed("PROXY v1 header longer than " + std::to_string(kMaxProxyV1Bytes) + " bytes");
    }
    return need_more();
  }
  if (data[eol + 1] != '\n') return failed("PROXY v1 header not ended by CRLF");
  const size_t size = eol + 2;
  if (size > kMaxProxyV1Bytes) {
    return failed("PROXY v1 header longer than " + std::to_string(kMaxProxyV1Bytes) + " bytes");
  }

  const auto parts = core::split(data.substr(kV1Prefix.size(), eol - kV1Prefix.size()), ' ');
  // The balancer could not tell the addresses: whatever follows UNKNOWN is to be ignored.
  if (parts[0] == "UNKNOWN") return done(size, std::nullopt);
  int family;
  if (parts[0] == "TCP4") {
    family = AF_INET;
  } else if (parts[0] == "TCP6") {
    family = AF_INET6;
  } else {
    return failed("PROXY v1 header with an unknown protocol");
  }
  if (parts.size() != 5) return failed("PROXY v1 header malformed");
  unsigned char source[sizeof(in6_addr)];
  unsigned char destination[sizeof(in6_addr)];
  const std::string source_text(parts[1]);
  const std::string destination_text(parts[2]);
  if (inet_pton(family, source_text.c_str(), source) != 1 ||
      inet_pton(family, destination_text.c_str(), destination) != 1) {
    return failed("PROXY v1 header with an invalid address");
  }
  const auto source_port = parse_port(parts[3]);
  if (!source_port || !parse_port(parts[4])) return failed("PROXY v1 header with an invalid port");
  return done(size, format_address(family, source, *source_port));
}

uint16_t read_u16(std::string_view data, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(data[at]) << 8) |
                               static_cast<uint8_t>(data[at + 1]));
}

ProxyHeader parse_v2(std::string_view data) {
  if (data.size() < kV2FixedBytes) return need_more();
  const auto version_command = static_cast<uint8_t>(data[12]);
  const auto family = static_cast<uint8_t>(data[13]);
  const size_t length = read_u16(data, 14);
  if ((version_command >> 4) != 2) return failed("PROXY v2 header with an unsupported version");
  const unsigned command = version_command & 0x0F;
  if (command > 1) return failed("PROXY v2 header with an unknown command");
  if (kV2FixedBytes + length > kMaxProxyV2Bytes) {
    return failed("PROXY v2 header longer than " + std::to_string(kMaxProxyV2Bytes) + " bytes");
  }
  if (data.size() < kV2FixedBytes + length) return need_more();
  const size_t size = kV2FixedBytes + length;
  // LOCAL: the balancer's own connection (health checks); the address block means nothing.
  if (command == 0) return done(size, std::nullopt);

  // TLVs after the address block are skipped with the rest of the declared length.
  const std::string_view block = data.substr(kV2FixedBytes, length);
  switch (family) {
    case 0x00:  // UNSPEC: the balancer does not know; use the socket's peer
      return done(size, std::nullopt);
    case 0x11: {  // TCP over IPv4: source, destination, source port, destination port
      if (block.size() < 12) return failed("PROXY v2 address block too short for IPv4");
      in_addr source;
      std::memcpy(&source, block.data(), sizeof source);
      return done(size, format_address(AF_INET, &source, read_u16(block, 8)));
    }
    case 0x21: {  // TCP over IPv6
      if (block.size() < 36) return failed("PROXY v2 address block too short for IPv6");
      in6_addr source;
      std::memcpy(&source, block.data(), sizeof source);
      return done(size, format_address(AF_INET6, &source, read_u16(block, 32)));
    }
    case 0x31:  // a Unix socket stream: no address of ours to show
      return done(size, std::nullopt);
    case 0x12:
    case 0x22:
    case 0x32:
      return failed("PROXY v2 header for a datagram connection");
    default:
      return failed("PROXY v2 header with an invalid address family");
  }
}

}  // namespace

ProxyHeader parse_proxy_header(std::string_view data) {
  if (data.empty()) return need_more();
  if (data[0] == kV1Prefix[0]) {
    if (data.size() < kV1Prefix.size()) {
      return is_prefix_of(data, kV1Prefix) ? need_more() : failed(kExpected);
    }
    if (!data.starts_with(kV1Prefix)) return failed(kExpected);
    return parse_v1(data);
  }
  if (data.size() < kV2Signature.size()) {
    return is_prefix_of(data, kV2Signature) ? need_more() : failed(kExpected);
  }
  if (!data.starts_with(kV2Signature)) return failed(kExpected);
  return parse_v2(data);
}

bool ProxyLayer::on_input(std::string_view in, std::string& up, std::string& /*down*/) {
  if (failed_) return false;
  if (done_) {
    up.append(in);
    return true;
  }
  // Most headers arrive whole in the first read: parse in place, copy only a partial one.
  std::string_view data = in;
  if (!pending_.empty()) {
    pending_.append(in);
    data = pending_;
  }
  ProxyHeader header = parse_proxy_header(data);
  switch (header.status) {
    case ProxyHeader::Status::NeedMore:
      if (pending_.empty()) pending_.assign(in);
      return true;
    case ProxyHeader::Status::Error:
      failed_ = true;
      error_ = std::move(header.error);
      pending_.clear();
      return false;
    case ProxyHeader::Status::Done:
      break;
  }
  done_ = true;
  source_ = std::move(header.source);
  up.append(data.substr(header.size));
  std::string().swap(pending_);
  return true;
}

bool ProxyLayer::on_output(std::string_view out, std::string& down) {
  if (failed_) return false;
  down.append(out);
  return true;
}

}  // namespace starling::net
