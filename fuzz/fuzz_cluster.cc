// The cluster's Kafka records: any bytes from the log decode or are refused, and what decodes
// encodes back to the same record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cluster/wire/records.h"

namespace {

template <typename R>
void round_trip(std::string_view bytes) {
  R r;
  if (!starling::cluster::decode(bytes, r)) return;
  R again;
  if (!starling::cluster::decode(starling::cluster::encode(r), again) || !(again == r))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  round_trip<starling::cluster::MessageRecord>(bytes);
  round_trip<starling::cluster::HeartbeatRecord>(bytes);
  round_trip<starling::cluster::RouteRecord>(bytes);
  round_trip<starling::cluster::ClaimRecord>(bytes);
  round_trip<starling::cluster::HandoverRecord>(bytes);
  starling::cluster::inbox_kind(bytes);
  std::string_view node, filter;
  starling::cluster::parse_route_key(bytes, node, filter);
  return 0;
}
