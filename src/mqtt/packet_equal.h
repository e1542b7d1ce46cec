// Field-wise equality for the packet structs that packet.h gives no operator==, so that tests
// and the fuzzer can check round trips. Private to src/mqtt and its tests.
#pragma once

#include "mqtt/packet.h"

namespace starling::mqtt {

inline bool same(const Connack& a, const Connack& b) {
  return a.session_present == b.session_present && a.reason_code == b.reason_code &&
         a.properties == b.properties;
}
inline bool same(const Ack& a, const Ack& b) {
  return a.type == b.type && a.packet_id == b.packet_id && a.reason_code == b.reason_code &&
         a.properties == b.properties;
}
inline bool same(const Subscribe& a, const Subscribe& b) {
  return a.packet_id == b.packet_id && a.properties == b.properties &&
         a.subscriptions == b.subscriptions;
}
inline bool same(const Suback& a, const Suback& b) {
  return a.packet_id == b.packet_id && a.properties == b.properties &&
         a.reason_codes == b.reason_codes;
}
inline bool same(const Unsubscribe& a, const Unsubscribe& b) {
  return a.packet_id == b.packet_id && a.properties == b.properties && a.filters == b.filters;
}
inline bool same(const Unsuback& a, const Unsuback& b) {
  return a.packet_id == b.packet_id && a.properties == b.properties &&
         a.reason_codes == b.reason_codes;
}
inline bool same(const Disconnect& a, const Disconnect& b) {
  return a.reason_code == b.reason_code && a.properties == b.properties;
}
inline bool same(const Auth& a, const Auth& b) {
  return a.reason_code == b.reason_code && a.properties == b.properties;
}
// The rest have operator==; these keep call sites uniform.
inline bool same(const Connect& a, const Connect& b) {
  return a == b;
}
inline bool same(const Publish& a, const Publish& b) {
  return a == b;
}

}  // namespace starling::mqtt
