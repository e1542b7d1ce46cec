// The PROXY protocol header (HAProxy's "The PROXY protocol", versions 1 and 2) that a load
// balancer sends before the client's bytes, so the broker sees the client's address instead of
// the balancer's. A listener behind such a balancer puts a ProxyLayer first on each connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "net/layers/stream_layer.h"

namespace starling::net {

struct ProxyHeader {
  enum class Status { NeedMore, Done, Error };
  Status status = Status::NeedMore;
  size_t size = 0;  // Done: the header's bytes at the start of the input
  // Done: the client's address as our peers are written ("1.2.3.4:5678", "[::1]:5678"); null
  // for a LOCAL command (the balancer's own health check) or an unknown family, meaning: keep
  // the socket's own peer.
  std::optional<std::string> source;
  std::string error;  // Error: why
};

// Parses the header at the start of data: NeedMore while data is a prefix of a header that
// may still be valid.
ProxyHeader parse_proxy_header(std::string_view data);

// Largest header accepted: v1 is at most 107 bytes by the spec; v2 TLVs (which we skip) could
// make it up to 64 KiB, but balancers send a few dozen bytes.
inline constexpr size_t kMaxProxyV1Bytes = 107;
inline constexpr size_t kMaxProxyV2Bytes = 16 + 4096;

class ProxyLayer final : public StreamLayer {
 public:
  bool on_input(std::string_view in, std::string& up, std::string& down) override;
  // Pass-through from the start: the balancer forwards whatever the broker sends.
  bool on_output(std::string_view out, std::string& down) override;
  bool established() const override { return done_; }
  const std::string& error() const override { return error_; }

  // Once established(): the client's address, or null to keep the socket's peer.
  const std::optional<std::string>& source() const { return source_; }

 private:
  std::string pending_;  // the header's bytes so far
  bool done_ = false;
  bool failed_ = false;
  std::optional<std::string> source_;
  std::string error_;
};

}  // namespace starling::net
