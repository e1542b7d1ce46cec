// libFuzzer target for the PROXY protocol header (net/layers/proxy_protocol). The first input byte
// picks a chunk size: the layer is fed the rest whole and in chunks, and both must agree on the
// outcome, the source address and the bytes passed up. A parsed header must parse the same
// on its own and stay within the size limits. Any disagreement traps.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "net/layers/proxy_protocol.h"

namespace {

using starling::net::parse_proxy_header;
using starling::net::ProxyHeader;
using starling::net::ProxyLayer;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  bool ok = true;
  bool established = false;
  std::optional<std::string> source;
  std::string up;
  std::string error;
};

Outcome run(std::string_view data, size_t chunk) {
  ProxyLayer layer;
  Outcome out;
  std::string down;
  for (size_t i = 0; i < data.size() && out.ok; i += chunk) {
    out.ok = layer.on_input(data.substr(i, chunk), out.up, down);
  }
  check(down.empty());
  out.established = layer.established();
  out.source = layer.source();
  out.error = layer.error();
  check(out.ok == out.error.empty());
  if (!out.ok) {
    check(!out.established);
    check(!layer.on_input("x", out.up, down));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + bytes[0] % 31;
  const std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);

  const ProxyHeader header = parse_proxy_header(data);
  switch (header.status) {
    case ProxyHeader::Status::Done: {
      check(header.size <= data.size());
      check(header.size <= starling::net::kMaxProxyV2Bytes);
      const ProxyHeader alone = parse_proxy_header(data.substr(0, header.size));
      check(alone.status == ProxyHeader::Status::Done && alone.size == header.size &&
            alone.source == header.source);
      // "[" + the longest IPv6 text (45) + "]:65535"
      if (header.source) check(!header.source->empty() && header.source->size() <= 53);
      break;
    }
    case ProxyHeader::Status::NeedMore:
      check(data.size() < starling::net::kMaxProxyV2Bytes);
      check(header.error.empty());
      break;
    case ProxyHeader::Status::Error:
      check(!header.error.empty());
      break;
  }

  Outcome whole = run(data, data.size() + 1);
  Outcome pieces = run(data, chunk);
  check(whole.ok == pieces.ok);
  check(whole.established == pieces.established);
  check(whole.source == pieces.source);
  check(whole.up == pieces.up);
  check(whole.established == (header.status == ProxyHeader::Status::Done));
  if (whole.established) check(whole.up == data.substr(header.size));
  return 0;
}
