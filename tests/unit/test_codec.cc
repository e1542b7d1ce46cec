// The wire codec: exact bytes against the spec, round trips of every packet and property for
// each version, and the reason code of every class of malformed input.
#include "mqtt/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mqtt/packet.h"

namespace starling::mqtt {
namespace {

// --- Byte helpers ---------------------------------------------------------------------------

std::string hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string unhex(std::string_view h) {
  std::string out;
  int nibble = -1;
  for (char c : h) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      continue;
    }
    if (nibble < 0) {
      nibble = v;
    } else {
      out += static_cast<char>(nibble << 4 | v);
      nibble = -1;
    }
  }
  return out;
}

// "\x00" as a literal is empty; this is the one-byte string.
const std::string kNul(1, '\0');

std::string u16(uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xFF)};
}
std::string str(std::string_view s) {
  return u16(static_cast<uint16_t>(s.size())) + std::string(s);
}

// A whole packet around body, with a correct remaining length.
std::string packet(uint8_t first_byte, const std::string& body) {
  std::string out(1, static_cast<char>(first_byte));
  append_varint(out, static_cast<uint32_t>(body.size()));
  return out + body;
}

// A 5.0 property block from raw property bytes.
std::string props(const std::string& raw) {
  std::string out;
  append_varint(out, static_cast<uint32_t>(raw.size()));
  return out + raw;
}

struct Frame {
  FrameHeader header;
  std::string_view body;
};

Frame frame(const std::string& wire) {
  Frame f;
  EXPECT_EQ(read_frame_header(wire, 0, f.header), FrameStatus::Ready) << hex(wire);
  EXPECT_EQ(f.header.total_size(), wire.size()) << hex(wire);
  f.body = std::string_view(wire).substr(std::min<size_t>(f.header.header_size, wire.size()));
  return f;
}

// Frames one packet and runs the decoder its type calls for.
Status decode_any(const std::string& wire, Version v) {
  Frame f = frame(wire);
  const uint8_t flags = f.header.flags();
  switch (f.header.type()) {
    case PacketType::Connect: {
      Connect p;
      return decode_connect(flags, f.body, p);
    }
    case PacketType::Connack: {
      Connack p;
      return decode_connack(flags, f.body, v, p);
    }
    case PacketType::Publish: {
      Publish p;
      return decode_publish(flags, f.body, v, p);
    }
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp: {
      Ack p;
      return decode_ack(f.header.type(), flags, f.body, v, p);
    }
    case PacketType::Subscribe: {
      Subscribe p;
      return decode_subscribe(flags, f.body, v, p);
    }
    case PacketType::Suback: {
      Suback p;
      return decode_suback(flags, f.body, v, p);
    }
    case PacketType::Unsubscribe: {
      Unsubscribe p;
      return decode_unsubscribe(flags, f.body, v, p);
    }
    case PacketType::Unsuback: {
      Unsuback p;
      return decode_unsuback(flags, f.body, v, p);
    }
    case PacketType::Pingreq:
    case PacketType::Pingresp:
      return decode_empty(flags, f.body);
    case PacketType::Disconnect: {
      Disconnect p;
      return decode_disconnect(flags, f.body, v, p);
    }
    case PacketType::Auth: {
      Auth p;
      return decode_auth(flags, f.body, v, p);
    }
  }
  return Status::fail(reason::MalformedPacket, "packet type 0");
}

uint8_t code(const std::string& wire, Version v) {
  return decode_any(wire, v).code;
}

// --- Round-trip helpers ---------------------------------------------------------------------

template <class P>
void expect_ok(Status st, const P&) {
  EXPECT_TRUE(st.ok()) << int{st.code} << ": " << st.message;
}

Connect rt(const Connect& in) {
  std::string w;
  encode_connect(in, w);
  Frame f = frame(w);
  EXPECT_EQ(f.header.type(), PacketType::Connect);
  Connect out;
  expect_ok(decode_connect(f.header.flags(), f.body, out), out);
  return out;
}
Connack rt(const Connack& in, Version v) {
  std::string w;
  encode_connack(in, v, w);
  Frame f = frame(w);
  EXPECT_EQ(f.header.type(), PacketType::Connack);
  Connack out;
  expect_ok(decode_connack(f.header.flags(), f.body, v, out), out);
  return out;
}
Publish rt(const Publish& in, Version v) {
  std::string w;
  const PublishLayout layout = encode_publish(in, v, w);
  EXPECT_EQ(layout.size, w.size());
  Frame f = frame(w);
  EXPECT_EQ(f.header.type(), PacketType::Publish);
  Publish out;
  expect_ok(decode_publish(f.header.flags(), f.body, v, out), out);
  return out;
}
Ack rt(const Ack& in, Version v) {
  std::string w;
  encode_ack(in, v, w);
  Frame f = frame(w);
  EXPECT_EQ(f.header.type(), in.type);
  Ack out;
  expect_ok(decode_ack(f.header.type(), f.header.flags(), f.body, v, out), out);
  return out;
}
Subscribe rt(const Subscribe& in, Version v) {
  std::string w;
  encode_subscribe(in, v, w);
  Frame f = frame(w);
  Subscribe out;
  expect_ok(decode_subscribe(f.header.flags(), f.body, v, out), out);
  return out;
}
Suback rt(const Suback& in, Version v) {
  std::string w;
  encode_suback(in, v, w);
  Frame f = frame(w);
  Suback out;
  expect_ok(decode_suback(f.header.flags(), f.body, v, out), out);
  return out;
}
Unsubscribe rt(const Unsubscribe& in, Version v) {
  std::string w;
  encode_unsubscribe(in, v, w);
  Frame f = frame(w);
  Unsubscribe out;
  expect_ok(decode_unsubscribe(f.header.flags(), f.body, v, out), out);
  return out;
}
Unsuback rt(const Unsuback& in, Version v) {
  std::string w;
  encode_unsuback(in, v, w);
  Frame f = frame(w);
  Unsuback out;
  expect_ok(decode_unsuback(f.header.flags(), f.body, v, out), out);
  return out;
}
Disconnect rt(const Disconnect& in, Version v) {
  std::string w;
  encode_disconnect(in, v, w);
  Frame f = frame(w);
  Disconnect out;
  expect_ok(decode_disconnect(f.header.flags(), f.body, v, out), out);
  return out;
}
Auth rt(const Auth& in) {
  std::string w;
  encode_auth(in, w);
  Frame f = frame(w);
  Auth out;
  expect_ok(decode_auth(f.header.flags(), f.body, Version::V5, out), out);
  return out;
}

constexpr Version kAllVersions[] = {Version::V31, Version::V311, Version::V5};

// --- Sample packets -------------------------------------------------------------------------

Properties all_connect_properties() {
  Properties p;
  p.session_expiry_interval = 3600;
  p.authentication_method = "SCRAM-SHA-1";
  p.authentication_data = std::string("\x00\x01\xFF", 3);
  p.request_problem_information = 0;
  p.request_response_information = 1;
  p.receive_maximum = 20;
  p.topic_alias_maximum = 10;
  p.user_properties = {{"k", "v"}, {"k", "v2"}, {"", ""}};
  p.maximum_packet_size = 1 << 20;
  return p;
}

Properties all_will_properties() {
  Properties p;
  p.payload_format_indicator = 1;
  p.message_expiry_interval = 60;
  p.content_type = "text/plain";
  p.response_topic = "reply/here";
  p.correlation_data = std::string("\x00\x01", 2);
  p.will_delay_interval = 5;
  p.user_properties = {{"wk", "wv"}};
  return p;
}

Properties all_connack_properties() {
  Properties p;
  p.session_expiry_interval = 0xFFFFFFFF;
  p.assigned_client_identifier = "auto-1234";
  p.server_keep_alive = 30;
  p.authentication_method = "SCRAM-SHA-1";
  p.authentication_data = "server-final";
  p.response_information = "resp/";
  p.server_reference = "other.example:1883";
  p.reason_string = "welcome";
  p.receive_maximum = 65535;
  p.topic_alias_maximum = 100;
  p.maximum_qos = 1;
  p.retain_available = 0;
  p.user_properties = {{"a", "b"}};
  p.maximum_packet_size = 268435460;
  p.wildcard_subscription_available = 1;
  p.subscription_identifier_available = 0;
  p.shared_subscription_available = 1;
  return p;
}

Properties all_publish_properties() {
  Properties p;
  p.payload_format_indicator = 0;
  p.message_expiry_interval = 10;
  p.content_type = "application/json";
  p.response_topic = "r/1";
  p.correlation_data = "corr";
  p.subscription_identifiers = {1, 268435455, 127, 128};
  p.topic_alias = 7;
  p.user_properties = {{"x", "1"}, {"x", "2"}, {"\xC3\xA9", "\xE2\x82\xAC"}};
  return p;
}

Connect sample_connect(Version v) {
  Connect c;
  c.version = v;
  c.protocol_name = v == Version::V31 ? "MQIsdp" : "MQTT";
  c.clean_start = false;
  c.keep_alive = 60;
  c.client_id = "client-1";
  Will will;
  will.topic = "last/will";
  will.payload = std::string("bye\x00\xFF", 5);
  will.qos = 2;
  will.retain = true;
  if (v == Version::V5) will.properties = all_will_properties();
  c.will = will;
  c.username = "user";
  c.password = std::string("p\x00ss", 4);
  if (v == Version::V5) c.properties = all_connect_properties();
  return c;
}

// --- Framing and variable byte integers -------------------------------------------------------

TEST(Varint, SpecBoundaryEncodings) {
  // Table 1-1 of section 1.5.5.
  const std::pair<uint32_t, const char*> cases[] = {
      {0, "00"},
      {127, "7F"},
      {128, "80 01"},
      {16383, "FF 7F"},
      {16384, "80 80 01"},
      {2097151, "FF FF 7F"},
      {2097152, "80 80 80 01"},
      {268435455, "FF FF FF 7F"},
  };
  for (const auto& [value, bytes] : cases) {
    std::string out;
    append_varint(out, value);
    EXPECT_EQ(hex(out), bytes) << value;
    EXPECT_EQ(varint_size(value), out.size()) << value;

    FrameHeader h;
    const std::string wire = "\x30" + out;
    EXPECT_EQ(read_frame_header(wire, 0, h), FrameStatus::Ready) << value;
    EXPECT_EQ(h.remaining_length, value);
    EXPECT_EQ(h.header_size, 1 + out.size());
  }
}

TEST(Frame, IncompleteUntilLengthKnown) {
  FrameHeader h;
  EXPECT_EQ(read_frame_header("", 0, h), FrameStatus::Incomplete);
  EXPECT_EQ(read_frame_header(unhex("30"), 0, h), FrameStatus::Incomplete);
  EXPECT_EQ(read_frame_header(unhex("30 80"), 0, h), FrameStatus::Incomplete);
  EXPECT_EQ(read_frame_header(unhex("30 FF FF FF"), 0, h), FrameStatus::Incomplete);
  // The header is ready even though the body has not arrived.
  ASSERT_EQ(read_frame_header(unhex("30 0A 00"), 0, h), FrameStatus::Ready);
  EXPECT_EQ(h.type(), PacketType::Publish);
  EXPECT_EQ(h.remaining_length, 10u);
  EXPECT_EQ(h.total_size(), 12u);
}

TEST(Frame, FiveByteVarintIsMalformed) {
  FrameHeader h;
  EXPECT_EQ(read_frame_header(unhex("30 FF FF FF FF 7F"), 0, h), FrameStatus::Malformed);
  EXPECT_EQ(read_frame_header(unhex("30 80 80 80 80"), 0, h), FrameStatus::Malformed);
}

TEST(Frame, NonMinimalVarintIsMalformed) {
  FrameHeader h;
  EXPECT_EQ(read_frame_header(unhex("C0 80 00"), 0, h), FrameStatus::Malformed);
  EXPECT_EQ(read_frame_header(unhex("30 FF 80 00"), 0, h), FrameStatus::Malformed);
}

TEST(Frame, TooLargeBeforeBodyArrives) {
  FrameHeader h;
  // 1 + 2 + 200 = 203 bytes.
  const std::string header = unhex("30 C8 01");
  EXPECT_EQ(read_frame_header(header, 202, h), FrameStatus::TooLarge);
  EXPECT_EQ(h.remaining_length, 200u);
  EXPECT_EQ(read_frame_header(header, 203, h), FrameStatus::Ready);
  EXPECT_EQ(read_frame_header(header, 0, h), FrameStatus::Ready);
  EXPECT_EQ(read_frame_header(unhex("30 FF FF FF 7F"), 1 << 20, h), FrameStatus::TooLarge);
}

TEST(Frame, FlagsAndType) {
  FrameHeader h;
  ASSERT_EQ(read_frame_header(unhex("3B 00"), 0, h), FrameStatus::Ready);
  EXPECT_EQ(h.type(), PacketType::Publish);
  EXPECT_EQ(h.flags(), 0x0B);
}

// --- Exact bytes ----------------------------------------------------------------------------

TEST(Bytes, Connack311) {
  std::string w;
  encode_connack(Connack{}, Version::V311, w);
  EXPECT_EQ(hex(w), "20 02 00 00");
  w.clear();
  encode_connack(Connack{.session_present = true}, Version::V311, w);
  EXPECT_EQ(hex(w), "20 02 01 00");
  w.clear();
  encode_connack(Connack{.reason_code = reason::BadUserNameOrPassword}, Version::V31, w);
  EXPECT_EQ(hex(w), "20 02 00 04");
}

TEST(Bytes, Connack5) {
  std::string w;
  encode_connack(Connack{}, Version::V5, w);
  EXPECT_EQ(hex(w), "20 03 00 00 00");
  w.clear();
  Connack c{.reason_code = reason::NotAuthorized};
  c.properties.reason_string = "no";
  encode_connack(c, Version::V5, w);
  EXPECT_EQ(hex(w), "20 08 00 87 05 1F 00 02 6E 6F");
}

TEST(Bytes, PingAndDisconnect) {
  std::string w;
  encode_pingreq(w);
  EXPECT_EQ(hex(w), "C0 00");
  w.clear();
  encode_pingresp(w);
  EXPECT_EQ(hex(w), "D0 00");
  w.clear();
  encode_disconnect(Disconnect{.reason_code = reason::ServerShuttingDown}, Version::V311, w);
  EXPECT_EQ(hex(w), "E0 00");
  w.clear();
  encode_disconnect(Disconnect{}, Version::V5, w);
  EXPECT_EQ(hex(w), "E0 00");
  w.clear();
  encode_disconnect(Disconnect{.reason_code = reason::DisconnectWithWill}, Version::V5, w);
  EXPECT_EQ(hex(w), "E0 01 04");
  w.clear();
  Disconnect d;
  d.properties.session_expiry_interval = 0;
  encode_disconnect(d, Version::V5, w);
  EXPECT_EQ(hex(w), "E0 07 00 05 11 00 00 00 00");
}

TEST(Bytes, Acks) {
  std::string w;
  encode_ack(Ack{.type = PacketType::Puback, .packet_id = 1}, Version::V311, w);
  EXPECT_EQ(hex(w), "40 02 00 01");
  w.clear();
  // 5.0 omits reason and properties when they are default.
  encode_ack(Ack{.type = PacketType::Pubrec, .packet_id = 0x1234}, Version::V5, w);
  EXPECT_EQ(hex(w), "50 02 12 34");
  w.clear();
  encode_ack(Ack{.type = PacketType::Pubrel, .packet_id = 2}, Version::V311, w);
  EXPECT_EQ(hex(w), "62 02 00 02");
  w.clear();
  encode_ack(Ack{.type = PacketType::Pubcomp, .packet_id = 2}, Version::V5, w);
  EXPECT_EQ(hex(w), "70 02 00 02");
  w.clear();
  encode_ack(Ack{.type = PacketType::Puback, .packet_id = 1, .reason_code = 0x10}, Version::V5, w);
  EXPECT_EQ(hex(w), "40 03 00 01 10");
  w.clear();
  // 3.1.1 has no reason codes at all.
  encode_ack(Ack{.type = PacketType::Puback, .packet_id = 1, .reason_code = 0x80}, Version::V311,
             w);
  EXPECT_EQ(hex(w), "40 02 00 01");
  w.clear();
  Ack a{.type = PacketType::Pubrel, .packet_id = 3, .reason_code = 0x92};
  a.properties.reason_string = "?";
  encode_ack(a, Version::V5, w);
  EXPECT_EQ(hex(w), "62 08 00 03 92 04 1F 00 01 3F");
}

TEST(Bytes, Publish311) {
  std::string w;
  Publish p{.topic = "a/b", .payload = "hi"};
  const PublishLayout l = encode_publish(p, Version::V311, w);
  EXPECT_EQ(hex(w), "30 07 00 03 61 2F 62 68 69");
  EXPECT_EQ(l.size, 9u);
  EXPECT_EQ(l.packet_id_offset, 0u);
}

TEST(Bytes, PublishQos1Layout) {
  std::string w = "prefix";  // offsets are relative to the packet, not to the buffer
  Publish p{
      .dup = true, .qos = 1, .retain = true, .topic = "a/b", .packet_id = 10, .payload = "hi"};
  const PublishLayout l = encode_publish(p, Version::V5, w);
  EXPECT_EQ(hex(w.substr(6)), "3B 0A 00 03 61 2F 62 00 0A 00 68 69");
  EXPECT_EQ(l.size, 12u);
  EXPECT_EQ(l.packet_id_offset, 7u);
  EXPECT_EQ(hex(w.substr(6 + l.packet_id_offset, 2)), "00 0A");
}

TEST(Bytes, PublishLargePayloadLayout) {
  Publish p{.qos = 2, .topic = "t", .packet_id = 0xBEEF};
  p.payload.assign(20000, 'x');
  p.properties.message_expiry_interval = 1;
  std::string w;
  const PublishLayout l = encode_publish(p, Version::V5, w);
  ASSERT_EQ(l.size, w.size());
  EXPECT_EQ(l.packet_id_offset, 1u + 3 + 3);
  EXPECT_EQ(hex(w.substr(l.packet_id_offset, 2)), "BE EF");
  EXPECT_EQ(rt(p, Version::V5), p);
}

TEST(Bytes, SubscribeAndUnsubscribe) {
  std::string w;
  Subscribe s{.packet_id = 1, .subscriptions = {{.filter = "a/+", .qos = 1}}};
  encode_subscribe(s, Version::V311, w);
  EXPECT_EQ(hex(w), "82 08 00 01 00 03 61 2F 2B 01");
  w.clear();
  s.subscriptions[0].no_local = true;
  s.subscriptions[0].retain_as_published = true;
  s.subscriptions[0].retain_handling = 2;
  s.properties.subscription_identifiers = {300};
  encode_subscribe(s, Version::V5, w);
  EXPECT_EQ(hex(w), "82 0C 00 01 03 0B AC 02 00 03 61 2F 2B 2D");
  w.clear();
  encode_unsubscribe(Unsubscribe{.packet_id = 2, .filters = {"a", "b/#"}}, Version::V311, w);
  EXPECT_EQ(hex(w), "A2 0A 00 02 00 01 61 00 03 62 2F 23");
  w.clear();
  encode_unsubscribe(Unsubscribe{.packet_id = 2, .filters = {"a"}}, Version::V5, w);
  EXPECT_EQ(hex(w), "A2 06 00 02 00 00 01 61");
}

TEST(Bytes, SubackAndUnsuback) {
  std::string w;
  encode_suback(Suback{.packet_id = 5, .reason_codes = {0, 1, 2, 0x80}}, Version::V311, w);
  EXPECT_EQ(hex(w), "90 06 00 05 00 01 02 80");
  w.clear();
  // 3.1.1 has a single failure code.
  encode_suback(Suback{.packet_id = 5, .reason_codes = {0x87, 0xA2}}, Version::V311, w);
  EXPECT_EQ(hex(w), "90 04 00 05 80 80");
  w.clear();
  encode_suback(Suback{.packet_id = 5, .reason_codes = {0x87, 0xA2}}, Version::V5, w);
  EXPECT_EQ(hex(w), "90 05 00 05 00 87 A2");
  w.clear();
  encode_unsuback(Unsuback{.packet_id = 5, .reason_codes = {0x11}}, Version::V311, w);
  EXPECT_EQ(hex(w), "B0 02 00 05");
  w.clear();
  encode_unsuback(Unsuback{.packet_id = 5, .reason_codes = {0x00, 0x11}}, Version::V5, w);
  EXPECT_EQ(hex(w), "B0 05 00 05 00 00 11");
}

TEST(Bytes, Auth) {
  std::string w;
  encode_auth(Auth{}, w);
  EXPECT_EQ(hex(w), "F0 00");
  w.clear();
  Auth a{.reason_code = reason::ContinueAuthentication};
  a.properties.authentication_method = "M";
  encode_auth(a, w);
  EXPECT_EQ(hex(w), "F0 06 18 04 15 00 01 4D");
}

TEST(Bytes, MosquittoPubConnect311) {
  // mosquitto_pub -V mqttv311 -i client1 -u user -P pass -k 60 ...
  const std::string wire = unhex(
      "10 1F 00 04 4D 51 54 54 04 C2 00 3C 00 07 63 6C 69 65 6E 74 31 00 04 75 73 65 72 00 04 70 "
      "61 73 73");
  Frame f = frame(wire);
  Connect c;
  ASSERT_TRUE(decode_connect(f.header.flags(), f.body, c).ok());
  EXPECT_EQ(c.version, Version::V311);
  EXPECT_EQ(c.protocol_name, "MQTT");
  EXPECT_TRUE(c.clean_start);
  EXPECT_EQ(c.keep_alive, 60);
  EXPECT_EQ(c.client_id, "client1");
  EXPECT_FALSE(c.will);
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pass");
  std::string again;
  encode_connect(c, again);
  EXPECT_EQ(hex(again), hex(wire));
}

TEST(Bytes, SpecConnect5VariableHeaderExample) {
  // Section 3.1.2.12's example: keep alive 10, Session Expiry Interval 10, then a payload.
  const std::string wire = packet(0x10, unhex("00 04 4D 51 54 54 05 C2 00 0A 05 11 00 00 00 0A") +
                                            str("id") + str("u") + str("p"));
  Frame f = frame(wire);
  Connect c;
  ASSERT_TRUE(decode_connect(f.header.flags(), f.body, c).ok());
  EXPECT_EQ(c.version, Version::V5);
  EXPECT_EQ(c.keep_alive, 10);
  EXPECT_EQ(c.properties.session_expiry_interval, 10u);
  std::string again;
  encode_connect(c, again);
  EXPECT_EQ(hex(again), hex(wire));
}

TEST(Bytes, Connect31) {
  Connect c{.version = Version::V31, .protocol_name = "MQIsdp", .keep_alive = 5, .client_id = "x"};
  std::string w;
  encode_connect(c, w);
  EXPECT_EQ(hex(w), "10 0F 00 06 4D 51 49 73 64 70 03 02 00 05 00 01 78");
}

TEST(Bytes, EncodeProperties) {
  std::string w;
  encode_properties(Properties{}, w);
  EXPECT_EQ(hex(w), "00");
  EXPECT_EQ(properties_size(Properties{}), 0u);
  Properties p;
  p.topic_alias = 1;
  p.subscription_identifiers = {2};
  p.user_properties = {{"k", "v"}};
  w.clear();
  encode_properties(p, w);
  // Field order of Properties: subscription identifier, topic alias, user property.
  EXPECT_EQ(hex(w), "0C 0B 02 23 00 01 26 00 01 6B 00 01 76");
  EXPECT_EQ(properties_size(p), 12u);
}

TEST(Bytes, ConnackCodeV311) {
  EXPECT_EQ(connack_code_v311(reason::Success), 0);
  EXPECT_EQ(connack_code_v311(reason::UnsupportedProtocolVersion), 1);
  EXPECT_EQ(connack_code_v311(reason::ClientIdentifierNotValid), 2);
  EXPECT_EQ(connack_code_v311(reason::ServerUnavailable), 3);
  EXPECT_EQ(connack_code_v311(reason::BadUserNameOrPassword), 4);
  EXPECT_EQ(connack_code_v311(reason::NotAuthorized), 5);
  EXPECT_EQ(connack_code_v311(reason::Banned), 3);
  EXPECT_EQ(connack_code_v311(reason::UnspecifiedError), 3);
}

// --- Round trips ----------------------------------------------------------------------------

TEST(RoundTrip, ConnectEveryVersion) {
  for (Version v : kAllVersions) {
    const Connect c = sample_connect(v);
    EXPECT_EQ(rt(c), c) << int(v);
    Connect bare{.version = v, .protocol_name = c.protocol_name};
    EXPECT_EQ(rt(bare), bare) << int(v);
    Connect user_only = bare;
    user_only.username = "";
    EXPECT_EQ(rt(user_only), user_only) << int(v);
  }
  // 5.0 lifted the rule that a password needs a user name.
  Connect pw{.version = Version::V5, .protocol_name = "MQTT", .password = "secret"};
  EXPECT_EQ(rt(pw), pw);
}

TEST(RoundTrip, WillQosAndRetainBits) {
  for (Version v : kAllVersions) {
    for (uint8_t qos = 0; qos < 3; ++qos) {
      for (bool retain : {false, true}) {
        Connect c = sample_connect(v);
        c.will->qos = qos;
        c.will->retain = retain;
        EXPECT_EQ(rt(c), c);
      }
    }
  }
}

TEST(RoundTrip, Connack) {
  for (Version v : kAllVersions) {
    for (uint8_t rc :
         {reason::Success, reason::UnsupportedProtocolVersion, reason::ClientIdentifierNotValid,
          reason::ServerUnavailable, reason::BadUserNameOrPassword, reason::NotAuthorized}) {
      // MQTT 3.1 has no session present flag.
      Connack c{.session_present = rc == 0 && v != Version::V31, .reason_code = rc};
      EXPECT_TRUE(rt(c, v) == c) << int(v) << " " << int(rc);
    }
  }
  // A 3.1 CONNACK never says session present (the byte is reserved), and a decoder refuses it.
  Connack present{.session_present = true};
  EXPECT_FALSE(rt(present, Version::V31).session_present);
  Connack decoded;
  EXPECT_FALSE(decode_connack(0, std::string("\x01\x00", 2), Version::V31, decoded).ok());
  EXPECT_TRUE(decode_connack(0, std::string("\x01\x00", 2), Version::V311, decoded).ok());
  Connack c{.session_present = true};
  c.properties = all_connack_properties();
  EXPECT_TRUE(rt(c, Version::V5) == c);
  Connack refused{.reason_code = reason::Banned};
  EXPECT_TRUE(rt(refused, Version::V5) == refused);
  // 3.1.1 has no "banned"; it maps to Server unavailable.
  EXPECT_EQ(rt(refused, Version::V311).reason_code, reason::ServerUnavailable);
}

TEST(RoundTrip, Publish) {
  for (Version v : kAllVersions) {
    for (uint8_t qos = 0; qos < 3; ++qos) {
      Publish p{.dup = qos > 0,
                .qos = qos,
                .retain = true,
                .topic = "a/b/c",
                .packet_id = static_cast<uint16_t>(qos ? 65535 : 0),
                .payload = std::string("\x00\x01\x02", 3)};
      EXPECT_EQ(rt(p, v), p);
      p.payload.clear();
      EXPECT_EQ(rt(p, v), p);
    }
  }
  Publish p{.qos = 1, .topic = "x", .packet_id = 9, .payload = "y"};
  p.properties = all_publish_properties();
  EXPECT_EQ(rt(p, Version::V5), p);
  // 5.0: an empty topic stands for the one the alias maps to.
  Publish alias{.topic = "", .payload = "z"};
  alias.properties.topic_alias = 3;
  EXPECT_EQ(rt(alias, Version::V5), alias);
}

TEST(RoundTrip, PublishIntoReusedStruct) {
  Publish first{.qos = 1, .topic = "a", .packet_id = 1, .payload = "1"};
  first.properties = all_publish_properties();
  Publish second{.topic = "b", .payload = "2"};
  std::string w1, w2;
  encode_publish(first, Version::V5, w1);
  encode_publish(second, Version::V5, w2);
  Publish out;
  Frame f1 = frame(w1), f2 = frame(w2);
  ASSERT_TRUE(decode_publish(f1.header.flags(), f1.body, Version::V5, out).ok());
  ASSERT_TRUE(decode_publish(f2.header.flags(), f2.body, Version::V5, out).ok());
  EXPECT_EQ(out, second);
}

TEST(RoundTrip, Acks) {
  for (Version v : kAllVersions) {
    for (PacketType t :
         {PacketType::Puback, PacketType::Pubrec, PacketType::Pubrel, PacketType::Pubcomp}) {
      Ack a{.type = t, .packet_id = 77};
      EXPECT_TRUE(rt(a, v) == a);
    }
  }
  for (uint8_t rc : {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99}) {
    for (PacketType t : {PacketType::Puback, PacketType::Pubrec}) {
      Ack a{.type = t, .packet_id = 1, .reason_code = rc};
      EXPECT_TRUE(rt(a, Version::V5) == a) << int(rc);
      a.properties.reason_string = "why";
      a.properties.user_properties = {{"k", "v"}};
      EXPECT_TRUE(rt(a, Version::V5) == a) << int(rc);
    }
  }
  for (PacketType t : {PacketType::Pubrel, PacketType::Pubcomp}) {
    Ack a{.type = t, .packet_id = 1, .reason_code = reason::PacketIdentifierNotFound};
    EXPECT_TRUE(rt(a, Version::V5) == a);
    a.reason_code = reason::Success;
    a.properties.reason_string = "ok";
    EXPECT_TRUE(rt(a, Version::V5) == a);
  }
}

TEST(RoundTrip, Subscribe) {
  Subscribe s{.packet_id = 10,
              .subscriptions = {{.filter = "a/#", .qos = 0}, {.filter = "+/b", .qos = 2}}};
  for (Version v : kAllVersions)
    EXPECT_TRUE(rt(s, v) == s);
  s.subscriptions.push_back({.filter = "$share/g/c",
                             .qos = 1,
                             .no_local = false,
                             .retain_as_published = true,
                             .retain_handling = 1});
  s.subscriptions.push_back({.filter = "d", .qos = 1, .no_local = true, .retain_handling = 2});
  s.properties.subscription_identifiers = {268435455};
  s.properties.user_properties = {{"u", "p"}};
  EXPECT_TRUE(rt(s, Version::V5) == s);
}

TEST(RoundTrip, Suback) {
  Suback s{.packet_id = 1, .reason_codes = {0, 1, 2, 0x80}};
  for (Version v : kAllVersions)
    EXPECT_TRUE(rt(s, v) == s);
  s.reason_codes = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
  s.properties.reason_string = "r";
  s.properties.user_properties = {{"a", "b"}};
  EXPECT_TRUE(rt(s, Version::V5) == s);
}

TEST(RoundTrip, Unsubscribe) {
  Unsubscribe u{.packet_id = 3, .filters = {"a/b", "$share/g/#", "+"}};
  for (Version v : kAllVersions)
    EXPECT_TRUE(rt(u, v) == u);
  u.properties.user_properties = {{"a", "b"}};
  EXPECT_TRUE(rt(u, Version::V5) == u);
}

TEST(RoundTrip, Unsuback) {
  Unsuback u{.packet_id = 3};
  EXPECT_TRUE(rt(u, Version::V311) == u);
  EXPECT_TRUE(rt(u, Version::V31) == u);
  u.reason_codes = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
  u.properties.reason_string = "r";
  EXPECT_TRUE(rt(u, Version::V5) == u);
}

TEST(RoundTrip, Disconnect) {
  for (Version v : kAllVersions)
    EXPECT_TRUE(rt(Disconnect{}, v) == Disconnect{});
  Disconnect d{.reason_code = reason::SessionTakenOver};
  EXPECT_TRUE(rt(d, Version::V5) == d);
  d.properties.session_expiry_interval = 7;
  d.properties.reason_string = "bye";
  d.properties.server_reference = "elsewhere";
  d.properties.user_properties = {{"a", "b"}};
  EXPECT_TRUE(rt(d, Version::V5) == d);
}

TEST(RoundTrip, Auth) {
  EXPECT_TRUE(rt(Auth{}) == Auth{});
  for (uint8_t rc : {reason::Success, reason::ContinueAuthentication, reason::ReAuthenticate}) {
    Auth a{.reason_code = rc};
    a.properties.authentication_method = "SCRAM";
    a.properties.authentication_data = std::string("\x00\x01", 2);
    a.properties.reason_string = "r";
    a.properties.user_properties = {{"a", "b"}};
    EXPECT_TRUE(rt(a) == a);
  }
}

TEST(RoundTrip, PingDecodes) {
  std::string w;
  encode_pingreq(w);
  EXPECT_TRUE(decode_any(w, Version::V5).ok());
  w.clear();
  encode_pingresp(w);
  EXPECT_TRUE(decode_any(w, Version::V311).ok());
}

// Every property alone, in a packet that allows it.
TEST(RoundTrip, EveryPropertyAlone) {
  struct Case {
    const char* name;
    std::function<void(Properties&)> set;
    enum { kConnect, kWill, kConnack, kPublish, kSubscribe, kDisconnect, kAuth } where;
  };
  const Case cases[] = {
      {"payload format", [](Properties& p) { p.payload_format_indicator = 1; }, Case::kPublish},
      {"message expiry", [](Properties& p) { p.message_expiry_interval = 9; }, Case::kPublish},
      {"content type", [](Properties& p) { p.content_type = "a/b"; }, Case::kPublish},
      {"response topic", [](Properties& p) { p.response_topic = "r"; }, Case::kPublish},
      {"correlation data", [](Properties& p) { p.correlation_data = "\xFF"; }, Case::kPublish},
      {"subscription id (publish)",
       [](Properties& p) {
         p.subscription_identifiers = {5, 6};
       },
       Case::kPublish},
      {"subscription id (subscribe)", [](Properties& p) { p.subscription_identifiers = {5}; },
       Case::kSubscribe},
      {"session expiry", [](Properties& p) { p.session_expiry_interval = 1; }, Case::kConnect},
      {"assigned client id", [](Properties& p) { p.assigned_client_identifier = "x"; },
       Case::kConnack},
      {"server keep alive", [](Properties& p) { p.server_keep_alive = 1; }, Case::kConnack},
      {"auth method", [](Properties& p) { p.authentication_method = "m"; }, Case::kConnect},
      {"auth data",
       [](Properties& p) {
         p.authentication_method = "m";
         p.authentication_data = "d";
       },
       Case::kAuth},
      {"request problem info", [](Properties& p) { p.request_problem_information = 1; },
       Case::kConnect},
      {"will delay", [](Properties& p) { p.will_delay_interval = 1; }, Case::kWill},
      {"request response info", [](Properties& p) { p.request_response_information = 0; },
       Case::kConnect},
      {"response info", [](Properties& p) { p.response_information = "i"; }, Case::kConnack},
      {"server reference", [](Properties& p) { p.server_reference = "s"; }, Case::kDisconnect},
      {"reason string", [](Properties& p) { p.reason_string = "r"; }, Case::kDisconnect},
      {"receive maximum", [](Properties& p) { p.receive_maximum = 1; }, Case::kConnack},
      {"topic alias maximum", [](Properties& p) { p.topic_alias_maximum = 0; }, Case::kConnect},
      {"topic alias", [](Properties& p) { p.topic_alias = 65535; }, Case::kPublish},
      {"maximum qos", [](Properties& p) { p.maximum_qos = 0; }, Case::kConnack},
      {"retain available", [](Properties& p) { p.retain_available = 1; }, Case::kConnack},
      {"user property",
       [](Properties& p) {
         p.user_properties = {{"k", "v"}};
       },
       Case::kWill},
      {"maximum packet size", [](Properties& p) { p.maximum_packet_size = 1; }, Case::kConnect},
      {"wildcard available", [](Properties& p) { p.wildcard_subscription_available = 0; },
       Case::kConnack},
      {"subscription id available", [](Properties& p) { p.subscription_identifier_available = 1; },
       Case::kConnack},
      {"shared available", [](Properties& p) { p.shared_subscription_available = 0; },
       Case::kConnack},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Properties p;
    c.set(p);
    ASSERT_GT(properties_size(p), 0u);
    switch (c.where) {
      case Case::kConnect: {
        Connect x{.version = Version::V5, .protocol_name = "MQTT", .properties = p};
        EXPECT_EQ(rt(x), x);
        break;
      }
      case Case::kWill: {
        Connect x{.version = Version::V5, .protocol_name = "MQTT"};
        x.will = Will{.topic = "w", .properties = p};
        EXPECT_EQ(rt(x), x);
        break;
      }
      case Case::kConnack: {
        Connack x{.properties = p};
        EXPECT_TRUE(rt(x, Version::V5) == x);
        break;
      }
      case Case::kPublish: {
        Publish x{.topic = "t", .properties = p};
        EXPECT_EQ(rt(x, Version::V5), x);
        break;
      }
      case Case::kSubscribe: {
        Subscribe x{.packet_id = 1, .properties = p, .subscriptions = {{.filter = "f"}}};
        EXPECT_TRUE(rt(x, Version::V5) == x);
        break;
      }
      case Case::kDisconnect: {
        Disconnect x{.properties = p};
        EXPECT_TRUE(rt(x, Version::V5) == x);
        break;
      }
      case Case::kAuth: {
        Auth x{.reason_code = reason::ContinueAuthentication, .properties = p};
        EXPECT_TRUE(rt(x) == x);
        break;
      }
    }
  }
}

// --- Truncation -----------------------------------------------------------------------------

// Feeds every strict prefix of an encoded packet to the framer and, as a body, to the decoder.
// No prefix may crash; every prefix must fail except the lengths listed as legal.
void expect_prefixes_fail(const std::string& wire, Version v,
                          std::vector<size_t> legal_body_lengths = {}) {
  Frame full = frame(wire);
  for (size_t n = 0; n < wire.size(); ++n) {
    FrameHeader h;
    const FrameStatus fs = read_frame_header(std::string_view(wire).substr(0, n), 0, h);
    EXPECT_TRUE(fs == FrameStatus::Incomplete || (fs == FrameStatus::Ready && h.total_size() > n))
        << hex(wire) << " prefix " << n;
  }
  for (size_t n = 0; n < full.body.size(); ++n) {
    const std::string truncated =
        packet(full.header.first_byte, std::string(full.body.substr(0, n)));
    const Status st = decode_any(truncated, v);
    const bool legal = std::find(legal_body_lengths.begin(), legal_body_lengths.end(), n) !=
                       legal_body_lengths.end();
    EXPECT_EQ(st.ok(), legal) << hex(wire) << " body prefix " << n;
    if (!legal) {
      EXPECT_NE(st.message[0], '\0');
    }
  }
}

TEST(Truncation, EveryPrefixOfEveryPacket) {
  for (Version v : kAllVersions) {
    SCOPED_TRACE(int(v));
    const bool v5 = v == Version::V5;
    std::string w;
    encode_connect(sample_connect(v), w);
    expect_prefixes_fail(w, v);

    w.clear();
    Connack ca{.session_present = true};
    if (v5) ca.properties = all_connack_properties();
    encode_connack(ca, v, w);
    expect_prefixes_fail(w, v);

    // An empty payload: otherwise cutting the payload short is just a shorter payload.
    w.clear();
    Publish p{.qos = 1, .topic = "a/b", .packet_id = 1};
    if (v5) p.properties = all_publish_properties();
    encode_publish(p, v, w);
    expect_prefixes_fail(w, v);

    w.clear();
    Ack a{.type = PacketType::Pubrec, .packet_id = 1, .reason_code = 0x80};
    a.properties.reason_string = "no";
    encode_ack(a, v, w);
    // 5.0 may omit the properties, and then the reason code.
    expect_prefixes_fail(w, v, v5 ? std::vector<size_t>{2, 3} : std::vector<size_t>{});

    w.clear();
    Subscribe s{.packet_id = 1, .subscriptions = {{.filter = "a/+", .qos = 1}}};
    if (v5) s.properties.subscription_identifiers = {1000};
    encode_subscribe(s, v, w);
    expect_prefixes_fail(w, v);

    w.clear();
    Suback sa{.packet_id = 1, .reason_codes = {1}};
    if (v5) sa.properties.reason_string = "r";
    encode_suback(sa, v, w);
    expect_prefixes_fail(w, v);

    w.clear();
    Unsubscribe u{.packet_id = 1, .filters = {"abc"}};
    if (v5) u.properties.user_properties = {{"k", "v"}};
    encode_unsubscribe(u, v, w);
    expect_prefixes_fail(w, v);

    w.clear();
    Unsuback ua{.packet_id = 1, .reason_codes = {0x11}};
    encode_unsuback(ua, v, w);
    expect_prefixes_fail(w, v);

    if (v5) {
      w.clear();
      Disconnect d{.reason_code = reason::ServerBusy};
      d.properties.reason_string = "busy";
      encode_disconnect(d, v, w);
      expect_prefixes_fail(w, v, {0, 1});

      w.clear();
      Auth au{.reason_code = reason::ContinueAuthentication};
      au.properties.authentication_method = "m";
      au.properties.authentication_data = "d";
      encode_auth(au, w);
      expect_prefixes_fail(w, v, {0});
    }
  }
}

// --- Malformed and forbidden input ----------------------------------------------------------

const std::string kConnect5Head = unhex("00 04 4D 51 54 54 05");
const std::string kConnect311Head = unhex("00 04 4D 51 54 54 04");

// Mosquitto's bridge flag (try_private): protocol level | 0x80 on 3.1 and 3.1.1 marks a bridge.
TEST(Decode, ConnectBridgeFlag) {
  Connect out;
  ASSERT_TRUE(decode_connect(0, unhex("00 04 4D 51 54 54 84 02 00 3C") + str("id"), out).ok());
  EXPECT_EQ(out.version, Version::V311);
  EXPECT_TRUE(out.bridge);
  ASSERT_TRUE(
      decode_connect(0, unhex("00 06 4D 51 49 73 64 70 83 02 00 3C") + str("id"), out).ok());
  EXPECT_EQ(out.version, Version::V31);
  EXPECT_TRUE(out.bridge);
  ASSERT_TRUE(decode_connect(0, unhex("00 04 4D 51 54 54 04 02 00 3C") + str("id"), out).ok());
  EXPECT_FALSE(out.bridge);
  Connect bridge{.version = Version::V311, .protocol_name = "MQTT", .client_id = "b"};
  bridge.bridge = true;
  EXPECT_EQ(rt(bridge), bridge);
}

TEST(Errors, UnsupportedProtocolVersion) {
  struct Case {
    std::string head;
    Version expected_version;
  };
  const Case cases[] = {
      {unhex("00 04 4D 51 54 54 06"), Version::V311},        // MQTT level 6
      {unhex("00 04 4D 51 54 54 03"), Version::V311},        // MQTT with 3.1's level
      {unhex("00 06 4D 51 49 73 64 70 04"), Version::V311},  // MQIsdp with 3.1.1's level
      {unhex("00 04 4D 51 54 58 04"), Version::V311},        // "MQTX"
      {unhex("00 04 4D 51 54 54 85"), Version::V311},        // bridge bit on 5.0
  };
  for (const Case& c : cases) {
    Connect out;
    out.version = Version::V5;
    const std::string body = c.head + unhex("02 00 3C") + str("id");
    const Status st = decode_connect(0, body, out);
    EXPECT_EQ(st.code, reason::UnsupportedProtocolVersion) << hex(c.head);
    EXPECT_EQ(out.version, c.expected_version);
  }
  // The version is known even when the packet fails later, so the CONNACK can be 5.0-shaped.
  Connect out;
  EXPECT_EQ(decode_connect(0, kConnect5Head + unhex("02 00"), out).code, reason::MalformedPacket);
  EXPECT_EQ(out.version, Version::V5);
  EXPECT_EQ(decode_connect(0, unhex("00 04 4D 51"), out).code, reason::MalformedPacket);
}

TEST(Errors, ConnectFlags) {
  auto connect311 = [](uint8_t flags, const std::string& payload) {
    return packet(0x10, kConnect311Head + std::string(1, char(flags)) + unhex("00 3C") + payload);
  };
  const std::string id = str("id");
  EXPECT_TRUE(decode_any(connect311(0x02, id), Version::V311).ok());
  EXPECT_EQ(code(connect311(0x03, id), Version::V311), reason::MalformedPacket);  // reserved
  // Will QoS 3, and will QoS/retain without the will flag.
  EXPECT_EQ(code(connect311(0x1C, id + str("w") + str("m")), Version::V311),
            reason::MalformedPacket);
  EXPECT_EQ(code(connect311(0x08, id), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(connect311(0x10, id), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(connect311(0x20, id), Version::V311), reason::MalformedPacket);
  // 3.1.1 password without user name; allowed in 5.0.
  EXPECT_EQ(code(connect311(0x40, id + str("pw")), Version::V311), reason::MalformedPacket);
  const std::string v5 = packet(0x10, kConnect5Head + unhex("40 00 3C 00") + id + str("pw"));
  EXPECT_TRUE(decode_any(v5, Version::V5).ok());
  // Fixed header flags.
  std::string bad = connect311(0x02, id);
  bad[0] = 0x12;
  EXPECT_EQ(code(bad, Version::V311), reason::MalformedPacket);
  // Flags promise a user name that is not there; and bytes left over.
  EXPECT_EQ(code(connect311(0x82, id), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(connect311(0x02, id + "x"), Version::V311), reason::MalformedPacket);
}

TEST(Errors, ConnectStrings) {
  auto connect311 = [](uint8_t flags, const std::string& payload) {
    return packet(0x10, kConnect311Head + std::string(1, char(flags)) + unhex("00 3C") + payload);
  };
  EXPECT_EQ(code(connect311(0x02, str("a\xFF")), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(connect311(0x02, str(std::string("a\0b", 3))), Version::V311),
            reason::MalformedPacket);
  EXPECT_EQ(code(connect311(0x82, str("id") + str("\xC0\x80")), Version::V311),
            reason::MalformedPacket);
  // Will topic: UTF-8 is checked; usability (wildcards, emptiness) is left to the broker.
  EXPECT_EQ(code(connect311(0x06, str("id") + str("\xED\xA0\x80") + str("m")), Version::V311),
            reason::MalformedPacket);
  EXPECT_TRUE(decode_any(connect311(0x06, str("id") + str("a/#") + str("m")), Version::V311).ok());
  EXPECT_TRUE(decode_any(connect311(0x06, str("id") + str("") + str("m")), Version::V311).ok());
  // Binary fields are not UTF-8 checked.
  EXPECT_TRUE(decode_any(connect311(0xC6, str("id") + str("w") + str(std::string("\0\xFF", 2)) +
                                              str("u") + str(std::string("\0\xFF", 2))),
                         Version::V311)
                  .ok());
}

TEST(Errors, ConnectProperties) {
  auto connect5 = [](const std::string& raw_props) {
    return packet(0x10, kConnect5Head + unhex("02 00 3C") + props(raw_props) + str("id"));
  };
  EXPECT_TRUE(decode_any(connect5(unhex("21 00 01")), Version::V5).ok());
  EXPECT_EQ(code(connect5(unhex("21 00 00")), Version::V5), reason::ProtocolError);  // RM 0
  EXPECT_EQ(code(connect5(unhex("27 00 00 00 00")), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(connect5(unhex("11 00 00 00 01 11 00 00 00 02")), Version::V5),
            reason::ProtocolError);                                                    // duplicate
  EXPECT_EQ(code(connect5(unhex("23 00 01")), Version::V5), reason::MalformedPacket);  // alias
  EXPECT_EQ(code(connect5(unhex("18 00 00 00 01")), Version::V5),
            reason::MalformedPacket);  // will delay outside the will
  EXPECT_EQ(code(connect5(unhex("17 02")), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(connect5(unhex("19 05")), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(connect5(unhex("16 00 01 41")), Version::V5), reason::ProtocolError);
  EXPECT_TRUE(decode_any(connect5(unhex("15 00 01 4D 16 00 01 41")), Version::V5).ok());
  EXPECT_EQ(code(connect5(unhex("7F 00")), Version::V5), reason::MalformedPacket);  // unknown
  EXPECT_EQ(code(connect5(unhex("00")), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(connect5(unhex("26 00 01 6B 00 02 76")), Version::V5),
            reason::MalformedPacket);  // value runs past the block
  // Property length larger than what follows.
  const std::string too_long = packet(0x10, kConnect5Head + unhex("02 00 3C 10 21 00 01"));
  EXPECT_EQ(code(too_long, Version::V5), reason::MalformedPacket);
  // Property length as a bad varint.
  const std::string bad_len =
      packet(0x10, kConnect5Head + unhex("02 00 3C FF FF FF FF 7F") + str("id"));
  EXPECT_EQ(code(bad_len, Version::V5), reason::MalformedPacket);
  // Will properties follow the will rules.
  const std::string will_ok =
      packet(0x10, kConnect5Head + unhex("06 00 3C 00") + str("id") +
                       props(unhex("18 00 00 00 01")) + str("w") + str("m"));
  EXPECT_TRUE(decode_any(will_ok, Version::V5).ok());
  const std::string will_bad =
      packet(0x10, kConnect5Head + unhex("06 00 3C 00") + str("id") +
                       props(unhex("11 00 00 00 01")) + str("w") + str("m"));
  EXPECT_EQ(code(will_bad, Version::V5), reason::MalformedPacket);
  const std::string will_response_wild =
      packet(0x10, kConnect5Head + unhex("06 00 3C 00") + str("id") + props("\x08" + str("r/+")) +
                       str("w") + str("m"));
  EXPECT_EQ(code(will_response_wild, Version::V5), reason::ProtocolError);
}

TEST(Errors, ConnackInput) {
  EXPECT_EQ(code(unhex("20 02 02 00"), Version::V311), reason::MalformedPacket);  // reserved
  EXPECT_EQ(code(unhex("21 02 00 00"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("20 03 00 00 00"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("20 02 00 06"), Version::V311), reason::ProtocolError);  // reserved code
  EXPECT_EQ(code(unhex("20 02 00 00"), Version::V5), reason::MalformedPacket);  // no properties
  EXPECT_EQ(code(unhex("20 03 00 01 00"), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(packet(0x20, unhex("00 00") + props(unhex("24 02"))), Version::V5),
            reason::ProtocolError);  // maximum QoS 2
  EXPECT_EQ(code(packet(0x20, unhex("00 00") + props(unhex("17 01"))), Version::V5),
            reason::MalformedPacket);  // a CONNECT-only property
  Connack c;
  ASSERT_TRUE(decode_connack(0, unhex("00 05"), Version::V311, c).ok());
  EXPECT_EQ(c.reason_code, reason::NotAuthorized);
}

TEST(Errors, PublishHeader) {
  const std::string body = str("a/b") + unhex("00 01") + "x";
  EXPECT_TRUE(decode_any(packet(0x32, body), Version::V311).ok());
  EXPECT_EQ(code(packet(0x36, body), Version::V311), reason::MalformedPacket);  // QoS 3
  EXPECT_EQ(code(packet(0x37, body), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(packet(0x38, str("a/b")), Version::V311), reason::MalformedPacket);  // DUP QoS0
  EXPECT_TRUE(decode_any(packet(0x3B, body), Version::V311).ok());
}

TEST(Errors, PublishTopic) {
  for (Version v : kAllVersions) {
    EXPECT_EQ(code(packet(0x30, str("a/\xFF")), v), reason::MalformedPacket);
    EXPECT_EQ(code(packet(0x30, str("\xC0\xAF")), v), reason::MalformedPacket);  // overlong '/'
    EXPECT_EQ(code(packet(0x30, str(std::string("a\0", 2))), v), reason::MalformedPacket);
    EXPECT_EQ(code(packet(0x30, str("a/+")), v), reason::ProtocolError);
    EXPECT_EQ(code(packet(0x30, str("#")), v), reason::ProtocolError);
    EXPECT_EQ(code(packet(0x30, str("a\xC3")), v), reason::MalformedPacket);  // truncated char
    EXPECT_EQ(code(packet(0x30, unhex("00 05 61")), v), reason::MalformedPacket);
    EXPECT_EQ(code(packet(0x30, unhex("00")), v), reason::MalformedPacket);
  }
  // Empty topic: only with an alias, and only in 5.0.
  EXPECT_EQ(code(packet(0x30, str("")), Version::V311), reason::ProtocolError);
  EXPECT_EQ(code(packet(0x30, str("") + props("")), Version::V5), reason::ProtocolError);
  EXPECT_TRUE(decode_any(packet(0x30, str("") + props(unhex("23 00 01"))), Version::V5).ok());
}

TEST(Errors, PublishProperties) {
  auto pub5 = [](const std::string& raw) { return packet(0x30, str("t") + props(raw) + "data"); };
  EXPECT_TRUE(decode_any(pub5(unhex("0B 01 0B 02 26 00 00 00 00 26 00 00 00 00")), Version::V5)
                  .ok());  // repeats allowed
  EXPECT_EQ(code(pub5(unhex("02 00 00 00 01 02 00 00 00 01")), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(pub5(unhex("23 00 01 23 00 02")), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(pub5(unhex("23 00 00")), Version::V5), reason::TopicAliasInvalid);
  EXPECT_EQ(code(pub5(unhex("0B 00")), Version::V5), reason::ProtocolError);  // sub id 0
  EXPECT_EQ(code(pub5(unhex("0B FF FF FF FF 7F")), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(pub5(unhex("0B 80 00")), Version::V5), reason::MalformedPacket);  // non-minimal
  EXPECT_EQ(code(pub5(unhex("01 02")), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(pub5(unhex("11 00 00 00 01")), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(pub5(unhex("1F 00 01 41")), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(pub5("\x03" + str("\xFF")), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(pub5("\x26" + str("k") + str("\xED\xBF\xBF")), Version::V5),
            reason::MalformedPacket);
  EXPECT_EQ(code(pub5("\x08" + str("a/#")), Version::V5), reason::ProtocolError);
  EXPECT_TRUE(decode_any(pub5("\x09" + str("\xFF\xFE")), Version::V5).ok());  // binary
  // 3.1.1 has no properties: the same bytes are payload.
  Publish p;
  ASSERT_TRUE(decode_publish(0, str("t") + unhex("23 00 00"), Version::V311, p).ok());
  EXPECT_EQ(hex(p.payload), "23 00 00");
}

TEST(Errors, ZeroPacketIdentifier) {
  for (Version v : kAllVersions) {
    const std::string maybe_props = v == Version::V5 ? props("") : "";
    EXPECT_EQ(code(packet(0x32, str("t") + unhex("00 00") + maybe_props), v),
              reason::ProtocolError);
    EXPECT_EQ(code(packet(0x82, unhex("00 00") + maybe_props + str("t") + kNul), v),
              reason::ProtocolError);
    EXPECT_EQ(code(packet(0xA2, unhex("00 00") + maybe_props + str("t")), v),
              reason::ProtocolError);
    EXPECT_EQ(code(unhex("40 02 00 00"), v), reason::ProtocolError);
  }
}

TEST(Errors, AckInput) {
  EXPECT_EQ(code(unhex("60 02 00 01"), Version::V311), reason::MalformedPacket);  // PUBREL 0000
  EXPECT_EQ(code(unhex("42 02 00 01"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("40 03 00 01 00"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("40 01 00"), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("40 03 00 01 05"), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(unhex("62 03 00 01 10"), Version::V5), reason::ProtocolError);  // PUBACK code
  EXPECT_EQ(code(unhex("40 04 00 01 00 05"), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(
      code(packet(0x40, unhex("00 01 00") + props(unhex("26 00 00 00 00")) + "x"), Version::V5),
      reason::MalformedPacket);  // trailing
  EXPECT_EQ(code(packet(0x40, unhex("00 01 00") + props(unhex("1F 00 00 1F 00 00"))), Version::V5),
            reason::ProtocolError);
  EXPECT_EQ(code(packet(0x40, unhex("00 01 00") + props(unhex("03 00 00"))), Version::V5),
            reason::MalformedPacket);
  Ack a;
  EXPECT_EQ(decode_ack(PacketType::Publish, 0, unhex("00 01"), Version::V5, a).code,
            reason::MalformedPacket);
  // The reason code alone, with no property length.
  ASSERT_TRUE(decode_ack(PacketType::Pubcomp, 0, unhex("00 01 92"), Version::V5, a).ok());
  EXPECT_EQ(a.reason_code, reason::PacketIdentifierNotFound);
}

TEST(Errors, SubscribeInput) {
  auto sub = [](Version v, const std::string& payload, const std::string& raw_props = "") {
    return packet(0x82, unhex("00 01") + (v == Version::V5 ? props(raw_props) : "") + payload);
  };
  for (Version v : kAllVersions) {
    EXPECT_TRUE(decode_any(sub(v, str("a") + "\x02"), v).ok());
    EXPECT_EQ(code(sub(v, ""), v), reason::ProtocolError);  // no filters
    EXPECT_EQ(code(sub(v, str("a")), v), reason::MalformedPacket);
    EXPECT_EQ(code(sub(v, str("\xFF") + kNul), v), reason::MalformedPacket);
    std::string flags0 = sub(v, str("a") + kNul);
    flags0[0] = char(0x80);
    EXPECT_EQ(code(flags0, v), reason::MalformedPacket);
    EXPECT_EQ(code(sub(v, str("a") + "\x40"), v), reason::MalformedPacket);  // reserved bit 6
  }
  // 3.1.1: every bit above QoS is reserved, and QoS 3 is Malformed.
  EXPECT_EQ(code(sub(Version::V311, str("a") + "\x04"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(sub(Version::V311, str("a") + "\x03"), Version::V311), reason::MalformedPacket);
  // 5.0: QoS 3 and Retain Handling 3 are Protocol Errors.
  EXPECT_EQ(code(sub(Version::V5, str("a") + "\x03"), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(sub(Version::V5, str("a") + "\x30"), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(sub(Version::V5, str("$share/g/a") + "\x04"), Version::V5), reason::ProtocolError);
  EXPECT_TRUE(decode_any(sub(Version::V5, str("a") + "\x2D"), Version::V5).ok());
  // Filter validity is the broker's call (SUBACK 0x8F), not the codec's.
  EXPECT_TRUE(decode_any(sub(Version::V5, str("a/#/b") + kNul), Version::V5).ok());
  // Properties: one subscription identifier, non-zero.
  EXPECT_EQ(code(sub(Version::V5, str("a") + kNul, unhex("0B 01 0B 02")), Version::V5),
            reason::ProtocolError);
  EXPECT_EQ(code(sub(Version::V5, str("a") + kNul, unhex("0B 00")), Version::V5),
            reason::ProtocolError);
  EXPECT_EQ(code(sub(Version::V5, str("a") + kNul, unhex("23 00 01")), Version::V5),
            reason::MalformedPacket);
}

TEST(Errors, UnsubscribeInput) {
  for (Version v : kAllVersions) {
    const std::string p = v == Version::V5 ? props("") : "";
    EXPECT_EQ(code(packet(0xA2, unhex("00 01") + p), v), reason::ProtocolError);
    EXPECT_EQ(code(packet(0xA0, unhex("00 01") + p + str("a")), v), reason::MalformedPacket);
    EXPECT_EQ(code(packet(0xA2, unhex("00 01") + p + str("a") + kNul), v), reason::MalformedPacket);
    EXPECT_EQ(code(packet(0xA2, unhex("00 01") + p + str("\xC3\x28")), v), reason::MalformedPacket);
  }
  EXPECT_EQ(code(packet(0xA2, unhex("00 01") + props(unhex("1F 00 00")) + str("a")), Version::V5),
            reason::MalformedPacket);  // no reason string in UNSUBSCRIBE
}

TEST(Errors, SubackAndUnsubackInput) {
  EXPECT_EQ(code(unhex("90 02 00 01"), Version::V311), reason::ProtocolError);
  EXPECT_EQ(code(unhex("90 03 00 01 03"), Version::V311), reason::ProtocolError);
  EXPECT_EQ(code(unhex("90 03 00 01 87"), Version::V311), reason::ProtocolError);
  EXPECT_TRUE(decode_any(unhex("90 04 00 01 00 87"), Version::V5).ok());
  EXPECT_EQ(code(unhex("92 03 00 01 00"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("B0 03 00 01 00"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("B0 03 00 01 00"), Version::V5), reason::ProtocolError);  // no codes
  EXPECT_EQ(code(unhex("B0 04 00 01 00 02"), Version::V5), reason::ProtocolError);
}

TEST(Errors, EmptyPackets) {
  EXPECT_EQ(code(unhex("C1 00"), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("D0 01 00"), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("E0 01 00"), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("E2 00"), Version::V5), reason::MalformedPacket);
}

TEST(Errors, DisconnectAndAuthInput) {
  EXPECT_EQ(code(unhex("E0 01 05"), Version::V5), reason::ProtocolError);
  EXPECT_TRUE(
      decode_any(packet(0xE0, unhex("00") + props(unhex("11 00 00 00 01"))), Version::V5).ok());
  EXPECT_EQ(code(packet(0xE0, unhex("00") + props(unhex("23 00 01"))), Version::V5),
            reason::MalformedPacket);
  EXPECT_EQ(code(packet(0xE0, unhex("00") + props(unhex("1C 00 00")) + "x"), Version::V5),
            reason::MalformedPacket);

  const std::string method = "\x15" + str("m");
  EXPECT_TRUE(decode_any(packet(0xF0, "\x18" + props(method)), Version::V5).ok());
  EXPECT_EQ(code(packet(0xF0, "\x18" + props(method)), Version::V311), reason::MalformedPacket);
  EXPECT_EQ(code(packet(0xF1, "\x18" + props(method)), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("F0 01 18"), Version::V5), reason::MalformedPacket);
  EXPECT_EQ(code(unhex("F0 02 18 00"), Version::V5), reason::ProtocolError);  // no method
  EXPECT_EQ(code(packet(0xF0, "\x05" + props(method)), Version::V5), reason::ProtocolError);
  EXPECT_EQ(code(packet(0xF0, "\x19" + props("\x16" + str("d"))), Version::V5),
            reason::ProtocolError);  // data without method
  EXPECT_EQ(code(packet(0xF0, "\x19" + props(method + method)), Version::V5),
            reason::ProtocolError);
}

}  // namespace
}  // namespace starling::mqtt
