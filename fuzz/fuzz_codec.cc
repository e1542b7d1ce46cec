// libFuzzer target for the wire codec. Frames the input, runs every decoder on the body for
// every protocol version, and for each successful decode checks that encoding and decoding again
// gives the same value and the same bytes. The body is also fed to the topic functions and
// compared with simple reference implementations. Any disagreement traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/codec.h"
#include "mqtt/packet.h"
#include "mqtt/topic.h"

namespace {

using namespace starling::mqtt;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr Version kVersions[] = {Version::V31, Version::V311, Version::V5};

// Frames an encoder's output, which must be exactly one packet with the given first byte.
std::string_view body_of(const std::string& wire, uint8_t expected_first_byte) {
  FrameHeader h;
  check(read_frame_header(wire, 0, h) == FrameStatus::Ready);
  check(h.total_size() == wire.size());
  check(h.first_byte == expected_first_byte);
  return std::string_view(wire).substr(h.header_size);
}

// Decoded values are written over these, so state left from an earlier packet would show up as
// a round-trip mismatch.
Properties dirty_properties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.content_type = "stale";
  p.subscription_identifiers = {1, 2};
  p.topic_alias = 9;
  p.user_properties = {{"stale", "stale"}};
  return p;
}

template <class P>
P dirty() {
  P p;
  p.properties = dirty_properties();
  return p;
}

void fuzz_connect(uint8_t flags, std::string_view body) {
  Connect a;
  if (!decode_connect(flags, body, a).ok()) return;
  std::string w1;
  encode_connect(a, w1);
  Connect b = dirty<Connect>();
  b.will = Will{.topic = "stale", .properties = dirty_properties()};
  b.username = "stale";
  b.password = "stale";
  check(decode_connect(0, body_of(w1, 0x10), b).ok());
  check(a == b);
  std::string w2;
  encode_connect(b, w2);
  check(w1 == w2);
}

void fuzz_connack(uint8_t flags, std::string_view body, Version v) {
  Connack a;
  if (!decode_connack(flags, body, v, a).ok()) return;
  std::string w1;
  encode_connack(a, v, w1);
  Connack b = dirty<Connack>();
  check(decode_connack(0, body_of(w1, 0x20), v, b).ok());
  check(a == b);
  std::string w2;
  encode_connack(b, v, w2);
  check(w1 == w2);
}

void fuzz_publish(uint8_t flags, std::string_view body, Version v) {
  Publish a;
  if (!decode_publish(flags, body, v, a).ok()) return;
  std::string w1 = "x";  // the layout is relative to the packet, not the buffer
  const PublishLayout layout = encode_publish(a, v, w1);
  check(layout.size == w1.size() - 1);
  w1.erase(0, 1);
  if (a.qos > 0) {
    check(layout.packet_id_offset + 2 <= w1.size());
    check(static_cast<uint8_t>(w1[layout.packet_id_offset]) == a.packet_id >> 8);
    check(static_cast<uint8_t>(w1[layout.packet_id_offset + 1]) == (a.packet_id & 0xFF));
  } else {
    check(layout.packet_id_offset == 0);
  }
  Publish b = dirty<Publish>();
  b.topic = "stale";
  b.payload = "stale";
  b.packet_id = 1;
  check(decode_publish(static_cast<uint8_t>(w1[0]) & 0x0F, body_of(w1, 0x30 | flags), v, b).ok());
  check(a == b);
  std::string w2;
  encode_publish(b, v, w2);
  check(w1 == w2);
}

void fuzz_ack(PacketType type, uint8_t flags, std::string_view body, Version v) {
  Ack a;
  if (!decode_ack(type, flags, body, v, a).ok()) return;
  std::string w1;
  encode_ack(a, v, w1);
  const uint8_t first = static_cast<uint8_t>(static_cast<uint8_t>(type) << 4 | flags);
  Ack b = dirty<Ack>();
  b.reason_code = 0x80;
  check(decode_ack(type, flags, body_of(w1, first), v, b).ok());
  check(a == b);
  std::string w2;
  encode_ack(b, v, w2);
  check(w1 == w2);
}

void fuzz_subscribe(uint8_t flags, std::string_view body, Version v) {
  Subscribe a;
  if (!decode_subscribe(flags, body, v, a).ok()) return;
  std::string w1;
  encode_subscribe(a, v, w1);
  Subscribe b = dirty<Subscribe>();
  b.subscriptions = {{.filter = "stale", .qos = 1, .no_local = true}};
  check(decode_subscribe(0x02, body_of(w1, 0x82), v, b).ok());
  check(a == b);
  std::string w2;
  encode_subscribe(b, v, w2);
  check(w1 == w2);
}

void fuzz_suback(uint8_t flags, std::string_view body, Version v) {
  Suback a;
  if (!decode_suback(flags, body, v, a).ok()) return;
  std::string w1;
  encode_suback(a, v, w1);
  Suback b = dirty<Suback>();
  b.reason_codes = {1, 2, 3};
  check(decode_suback(0, body_of(w1, 0x90), v, b).ok());
  check(a == b);
  std::string w2;
  encode_suback(b, v, w2);
  check(w1 == w2);
}

void fuzz_unsubscribe(uint8_t flags, std::string_view body, Version v) {
  Unsubscribe a;
  if (!decode_unsubscribe(flags, body, v, a).ok()) return;
  std::string w1;
  encode_unsubscribe(a, v, w1);
  Unsubscribe b = dirty<Unsubscribe>();
  b.filters = {"stale"};
  check(decode_unsubscribe(0x02, body_of(w1, 0xA2), v, b).ok());
  check(a == b);
  std::string w2;
  encode_unsubscribe(b, v, w2);
  check(w1 == w2);
}

void fuzz_unsuback(uint8_t flags, std::string_view body, Version v) {
  Unsuback a;
  if (!decode_unsuback(flags, body, v, a).ok()) return;
  std::string w1;
  encode_unsuback(a, v, w1);
  Unsuback b = dirty<Unsuback>();
  b.reason_codes = {0x11};
  check(decode_unsuback(0, body_of(w1, 0xB0), v, b).ok());
  check(a == b);
  std::string w2;
  encode_unsuback(b, v, w2);
  check(w1 == w2);
}

void fuzz_disconnect(uint8_t flags, std::string_view body, Version v) {
  Disconnect a;
  if (!decode_disconnect(flags, body, v, a).ok()) return;
  std::string w1;
  encode_disconnect(a, v, w1);
  Disconnect b = dirty<Disconnect>();
  b.reason_code = 0x80;
  check(decode_disconnect(0, body_of(w1, 0xE0), v, b).ok());
  check(a == b);
  std::string w2;
  encode_disconnect(b, v, w2);
  check(w1 == w2);
}

void fuzz_auth(uint8_t flags, std::string_view body, Version v) {
  Auth a;
  if (!decode_auth(flags, body, v, a).ok()) return;
  check(v == Version::V5);
  std::string w1;
  encode_auth(a, w1);
  Auth b = dirty<Auth>();
  b.reason_code = 0x19;
  check(decode_auth(0, body_of(w1, 0xF0), v, b).ok());
  check(a == b);
  std::string w2;
  encode_auth(b, w2);
  check(w1 == w2);
}

void fuzz_framing(std::string_view buf) {
  FrameHeader h;
  const FrameStatus unlimited = read_frame_header(buf, 0, h);
  if (unlimited != FrameStatus::Ready) return;
  // The varint re-encodes to the very bytes it was read from (only the shortest form is legal).
  std::string varint;
  append_varint(varint, h.remaining_length);
  check(varint.size() == varint_size(h.remaining_length));
  check(h.header_size == 1 + varint.size());
  check(buf.substr(1, varint.size()) == varint);
  // A limit only ever turns Ready into TooLarge, exactly when the packet exceeds it.
  for (uint32_t limit : {1u, 2u, 64u, 300u, 70000u}) {
    FrameHeader limited;
    const FrameStatus st = read_frame_header(buf, limit, limited);
    check(st == (h.total_size() > limit ? FrameStatus::TooLarge : FrameStatus::Ready));
  }
}

// Straightforward decoders to compare the optimised topic.cc against.
bool reference_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3F);
    }
    constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp == 0 || cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::vector<std::string_view> levels(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '/') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

bool reference_match(std::string_view filter, std::string_view topic) {
  const auto f = levels(filter), t = levels(topic);
  if (topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  size_t i = 0;
  for (; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i == t.size() || (f[i] != "+" && f[i] != t[i])) return false;
  }
  return i == t.size();
}

void fuzz_topics(std::string_view s) {
  check(valid_utf8(s) == reference_utf8(s));
  // The first half as a filter, the second as a topic.
  const std::string_view filter = s.substr(0, s.size() / 2), topic = s.substr(s.size() / 2);
  std::string_view group, rest;
  const bool shared = split_shared_filter(filter, group, rest);
  if (shared) check(group.size() + rest.size() + 8 == filter.size());
  if (!valid_topic_name(topic)) return;
  check(topic_matches("#", topic) == (topic[0] != '$'));
  if (!topic.starts_with("$share/"))
    check(valid_topic_filter(topic) && topic_matches(topic, topic));
  if (valid_topic_filter(filter)) {
    const std::string_view plain = shared ? rest : filter;
    check(topic_matches(plain, topic) == reference_match(plain, topic));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view buf(reinterpret_cast<const char*>(data), size);
  fuzz_framing(buf);
  FrameHeader h;
  if (read_frame_header(buf, 0, h) != FrameStatus::Ready) return 0;
  // A short input is decoded as far as it goes: decoders must cope with any body.
  std::string_view body = buf.substr(h.header_size);
  if (body.size() > h.remaining_length) body = body.substr(0, h.remaining_length);
  const uint8_t flags = h.flags();

  fuzz_topics(body);
  fuzz_connect(flags, body);
  check(decode_empty(flags, body).ok() == (flags == 0 && body.empty()));
  for (Version v : kVersions) {
    fuzz_connack(flags, body, v);
    fuzz_publish(flags, body, v);
    for (PacketType t :
         {PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel, PacketType::Pubcomp}) {
      fuzz_ack(t, flags, body, v);
    }
    fuzz_subscribe(flags, body, v);
    fuzz_suback(flags, body, v);
    fuzz_unsubscribe(flags, body, v);
    fuzz_unsuback(flags, body, v);
    fuzz_disconnect(flags, body, v);
    fuzz_auth(flags, body, v);
  }
  return 0;
}
