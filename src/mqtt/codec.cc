#include "mqtt/codec.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>

#include "mqtt/properties.h"
#include "mqtt/topic.h"
#include "mqtt/wire.h"

// Error classes follow the spec's definitions (section 1.2): bytes that cannot be parsed, bad
// fixed-header or option bits and ill-formed UTF-8 are a Malformed Packet (0x81); well-formed
// values the protocol forbids are a Protocol Error (0x82), unless the spec names another code.

namespace starling::mqtt {
namespace {

using wire::Reader;

Status malformed(const char* m) {
  return Status::fail(reason::MalformedPacket, m);
}
Status protocol_error(const char* m) {
  return Status::fail(reason::ProtocolError, m);
}

bool is_one_of(uint8_t code, std::initializer_list<uint8_t> codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

// A length-prefixed UTF-8 string (section 1.5.4): ill-formed UTF-8 is a Malformed Packet.
Status read_utf8(Reader& r, std::string_view& s, const char* what) {
  if (!r.string(s)) return malformed(what);
  if (!valid_utf8(s)) return Status::fail(reason::MalformedPacket, "string is not valid UTF-8");
  return {};
}

// [MQTT-2.2.1-3]: SUBSCRIBE, UNSUBSCRIBE and QoS>0 PUBLISH need a non-zero identifier. The
// acknowledgements echo it, so 0 there cannot refer to anything either. The spec names no code;
// the field parses fine, so it is a Protocol Error.
Status read_packet_id(Reader& r, uint16_t& id) {
  if (!r.u16(id)) return malformed("truncated packet identifier");
  if (id == 0) return protocol_error("packet identifier 0");
  return {};
}

// PUBLISH Topic Names: [MQTT-3.3.2-2] forbids wildcards but names no code. The string parses,
// and 0x90 is defined for names that are "correctly formed" but refused, so this is a Protocol
// Error.
Status check_topic_name(std::string_view topic) {
  if (has_wildcard(topic)) return protocol_error("wildcard in topic name");
  return {};
}

// Runs the body writer twice, once to measure and once to append, behind the fixed header.
template <class Body>
void emit(std::string& out, uint8_t first_byte, Body&& body) {
  wire::SizeSink size;
  body(size);
  const uint32_t remaining = static_cast<uint32_t>(size.size());
  out.reserve(out.size() + 1 + wire::varint_size(remaining) + remaining);
  wire::AppendSink w(out);
  w.u8(first_byte);
  w.varint(remaining);
  body(w);
}

uint8_t first_byte(PacketType t, uint8_t flags = 0) {
  return static_cast<uint8_t>(static_cast<uint8_t>(t) << 4 | flags);
}

bool properties_empty(const Properties& p) {
  return properties_size(p) == 0;
}

}  // namespace

// --- Framing ------------------------------------------------------------------------------

FrameStatus read_frame_header(std::string_view buf, uint32_t max_packet_size, FrameHeader& out) {
  if (buf.empty()) return FrameStatus::Incomplete;
  uint32_t remaining = 0;
  size_t len = 0;
  switch (wire::parse_varint(reinterpret_cast<const uint8_t*>(buf.data()) + 1, buf.size() - 1,
                             remaining, len)) {
    case wire::VarintParse::Incomplete:
      return FrameStatus::Incomplete;
    case wire::VarintParse::Malformed:
      return FrameStatus::Malformed;
    case wire::VarintParse::Ok:
      break;
  }
  out.first_byte = static_cast<uint8_t>(buf[0]);
  out.remaining_length = remaining;
  out.header_size = static_cast<uint32_t>(1 + len);
  if (max_packet_size != 0 && out.total_size() > max_packet_size) return FrameStatus::TooLarge;
  return FrameStatus::Ready;
}

void append_varint(std::string& out, uint32_t value) {
  wire::AppendSink(out).varint(value);
}

size_t varint_size(uint32_t value) {
  return wire::varint_size(value);
}

// --- Decoding -------------------------------------------------------------------------------

Status decode_connect(uint8_t flags, std::string_view body, Connect& out) {
  out.version = Version::V311;
  if (flags != 0) return malformed("CONNECT fixed header flags must be 0");
  Reader r(body);
  std::string_view name;
  uint8_t level = 0;
  if (!r.string(name) || !r.u8(level)) return malformed("truncated protocol name or level");
  // Mosquitto's bridge flag on 3.1 and 3.1.1 (its try_private): the client is a bridge, which
  // does not want its own messages back and wants retained flags as published.
  out.bridge = (level & 0x80) != 0 && (level & 0x7F) != 5;
  if (out.bridge) level &= 0x7F;
  if (name == "MQTT" && level == 5) {
    out.version = Version::V5;
  } else if (name == "MQTT" && level == 4) {
    out.version = Version::V311;
  } else if (name == "MQIsdp" && level == 3) {
    out.version = Version::V31;
  } else {
    // Unknown names and levels (and mismatched pairs) are refused with a 3.1.1-shaped CONNACK
    // (return code 1): every MQTT version can read that, which is not true of a 5.0 CONNACK.
    return Status::fail(reason::UnsupportedProtocolVersion, "unsupported protocol name or level");
  }
  const bool v5 = out.version == Version::V5;
  out.protocol_name.assign(name);

  uint8_t cf = 0;
  if (!r.u8(cf) || !r.u16(out.keep_alive)) return malformed("truncated connect flags");
  if (cf & 0x01) return malformed("CONNECT reserved flag set");  // [MQTT-3.1.2-3]
  const bool will_flag = cf & 0x04;
  const uint8_t will_qos = (cf >> 3) & 0x03;
  const bool will_retain = cf & 0x20;
  const bool password_flag = cf & 0x40;
  const bool username_flag = cf & 0x80;
  if (will_qos == 3) return malformed("will QoS 3");  // section 3.1.2.6 names it Malformed
  // [MQTT-3.1.2-11], [MQTT-3.1.2-13] name no code; like QoS 3 these are impossible flag bits.
  if (!will_flag && (will_qos != 0 || will_retain)) {
    return malformed("will QoS or retain set without will flag");
  }
  // [MQTT-3.1.2-22] in 3.1.1 (5.0 dropped the rule); same class as the will bits.
  if (!v5 && password_flag && !username_flag) return malformed("password flag without user name");
  out.clean_start = cf & 0x02;

  if (v5) {
    if (Status st = read_properties(r, PropertyContext::Connect, out.properties); !st.ok()) {
      return st;
    }
  } else {
    clear_properties(out.properties);
  }

  std::string_view client_id;
  if (Status st = read_utf8(r, client_id, "truncated client identifier"); !st.ok()) return st;
  out.client_id.assign(client_id);

  out.will.reset();
  if (will_flag) {
    Will& will = out.will.emplace();
    will.qos = will_qos;
    will.retain = will_retain;
    if (v5) {
      if (Status st = read_properties(r, PropertyContext::Will, will.properties); !st.ok()) {
        return st;
      }
    }
    std::string_view topic, payload;
    // Only the encoding is checked: whether the name is usable is the broker's call, answered
    // with CONNACK 0x90 (Topic Name invalid).
    if (Status st = read_utf8(r, topic, "truncated will topic"); !st.ok()) return st;
    if (!r.string(payload)) return malformed("truncated will payload");
    will.topic.assign(topic);
    will.payload.assign(payload);
  }

  out.username.reset();
  if (username_flag) {
    std::string_view username;
    if (Status st = read_utf8(r, username, "truncated user name"); !st.ok()) return st;
    out.username.emplace(username);
  }
  out.password.reset();
  if (password_flag) {
    std::string_view password;
    if (!r.string(password)) return malformed("truncated password");
    out.password.emplace(password);
  }
  if (!r.empty()) return malformed("trailing bytes after CONNECT payload");
  return {};
}

Status decode_connack(uint8_t flags, std::string_view body, Version v, Connack& out) {
  if (flags != 0) return malformed("CONNACK fixed header flags must be 0");
  Reader r(body);
  uint8_t ack_flags = 0, code = 0;
  if (!r.u8(ack_flags) || !r.u8(code)) return malformed("truncated CONNACK");
  // MQTT 3.1 has no session present flag: the whole byte is reserved there.
  if (ack_flags & (v == Version::V31 ? 0xFF : 0xFE)) {
    return malformed("CONNACK reserved flags set");
  }
  out.session_present = ack_flags & 0x01;
  if (v == Version::V5) {
    if (!is_one_of(code, {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
                          0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F})) {
      return protocol_error("invalid CONNACK reason code");
    }
    out.reason_code = code;
    if (Status st = read_properties(r, PropertyContext::Connack, out.properties); !st.ok()) {
      return st;
    }
  } else {
    // The inverse of connack_code_v311(); 6..255 are reserved in 3.1.1.
    static constexpr uint8_t kFromV311[] = {reason::Success,
                                            reason::UnsupportedProtocolVersion,
                                            reason::ClientIdentifierNotValid,
                                            reason::ServerUnavailable,
                                            reason::BadUserNameOrPassword,
                                            reason::NotAuthorized};
    if (code >= std::size(kFromV311)) return protocol_error("reserved CONNACK return code");
    out.reason_code = kFromV311[code];
    clear_properties(out.properties);
  }
  if (!r.empty()) return malformed("trailing bytes after CONNACK");
  return {};
}

Status decode_publish(uint8_t flags, std::string_view body, Version v, Publish& out) {
  const uint8_t qos = (flags >> 1) & 0x03;
  if (qos == 3) return malformed("PUBLISH QoS 3");  // [MQTT-3.3.1-4]
  // [MQTT-3.3.1-2] names no code; like QoS 3 it is an impossible combination of header bits.
  if ((flags & 0x08) && qos == 0) return malformed("DUP set on QoS 0 PUBLISH");
  out.dup = flags & 0x08;
  out.qos = qos;
  out.retain = flags & 0x01;

  Reader r(body);
  std::string_view topic;
  if (Status st = read_utf8(r, topic, "truncated topic name"); !st.ok()) return st;
  if (Status st = check_topic_name(topic); !st.ok()) return st;
  out.packet_id = 0;
  if (qos > 0) {
    if (Status st = read_packet_id(r, out.packet_id); !st.ok()) return st;
  }
  if (v == Version::V5) {
    if (Status st = read_properties(r, PropertyContext::Publish, out.properties); !st.ok()) {
      return st;
    }
  } else {
    clear_properties(out.properties);
  }
  // 5.0 allows an empty topic only alongside a Topic Alias (section 3.3.2.3.4); 3.1.1 never.
  if (topic.empty() && !out.properties.topic_alias) return protocol_error("empty topic name");
  out.topic.assign(topic);
  out.payload.assign(r.rest());
  return {};
}

Status decode_ack(PacketType type, uint8_t flags, std::string_view body, Version v, Ack& out) {
  if (type != PacketType::Puback && type != PacketType::Pubrec && type != PacketType::Pubrel &&
      type != PacketType::Pubcomp) {
    return malformed("not an acknowledgement packet");
  }
  if (flags != (type == PacketType::Pubrel ? 0x02 : 0x00)) {
    return malformed("invalid fixed header flags");
  }
  out.type = type;
  Reader r(body);
  if (Status st = read_packet_id(r, out.packet_id); !st.ok()) return st;
  out.reason_code = reason::Success;
  clear_properties(out.properties);
  if (v == Version::V5 && !r.empty()) {
    // Section 3.4.2.1: reason code absent means Success; a body under 4 bytes has no property
    // length.
    r.u8(out.reason_code);
    const bool pub_ack = type == PacketType::Puback || type == PacketType::Pubrec;
    if (pub_ack
            ? !is_one_of(out.reason_code, {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99})
            : !is_one_of(out.reason_code, {0x00, 0x92})) {
      return protocol_error("invalid reason code");
    }
    if (!r.empty()) {
      if (Status st = read_properties(r, PropertyContext::PubAck, out.properties); !st.ok()) {
        return st;
      }
    }
  }
  if (!r.empty()) return malformed("trailing bytes after acknowledgement");
  return {};
}

Status decode_subscribe(uint8_t flags, std::string_view body, Version v, Subscribe& out) {
  if (flags != 0x02) return malformed("SUBSCRIBE fixed header flags must be 0010");
  const bool v5 = v == Version::V5;
  Reader r(body);
  if (Status st = read_packet_id(r, out.packet_id); !st.ok()) return st;
  if (v5) {
    if (Status st = read_properties(r, PropertyContext::Subscribe, out.properties); !st.ok()) {
      return st;
    }
  } else {
    clear_properties(out.properties);
  }
  out.subscriptions.clear();
  if (r.empty()) return protocol_error("SUBSCRIBE without topic filters");  // [MQTT-3.8.3-2]
  while (!r.empty()) {
    std::string_view filter;
    uint8_t options = 0;
    if (Status st = read_utf8(r, filter, "truncated topic filter"); !st.ok()) return st;
    if (!r.u8(options)) return malformed("truncated subscription options");
    SubscriptionRequest& sub = out.subscriptions.emplace_back();
    sub.filter.assign(filter);
    sub.qos = options & 0x03;
    if (v5) {
      // Section 3.8.3.1: reserved bits are Malformed; QoS 3, Retain Handling 3 and No Local
      // on a shared subscription are Protocol Errors.
      if (options & 0xC0) return malformed("subscription options reserved bits set");
      sub.no_local = options & 0x04;
      sub.retain_as_published = options & 0x08;
      sub.retain_handling = (options >> 4) & 0x03;
      if (sub.qos == 3) return protocol_error("subscription QoS 3");
      if (sub.retain_handling == 3) return protocol_error("retain handling 3");
      if (sub.no_local && filter.starts_with("$share/")) {
        return protocol_error("no local on a shared subscription");  // [MQTT-3.8.3-4]
      }
    } else {
      // [MQTT-3.8.3-4] of 3.1.1: both are Malformed there.
      if (options & 0xFC) return malformed("subscription options reserved bits set");
      if (sub.qos == 3) return malformed("subscription QoS 3");
    }
  }
  return {};
}

Status decode_suback(uint8_t flags, std::string_view body, Version v, Suback& out) {
  if (flags != 0) return malformed("SUBACK fixed header flags must be 0");
  Reader r(body);
  if (Status st = read_packet_id(r, out.packet_id); !st.ok()) return st;
  const bool v5 = v == Version::V5;
  if (v5) {
    if (Status st = read_properties(r, PropertyContext::Suback, out.properties); !st.ok()) {
      return st;
    }
  } else {
    clear_properties(out.properties);
  }
  if (r.empty()) return protocol_error("SUBACK without reason codes");
  const std::string_view codes = r.rest();
  out.reason_codes.assign(codes.begin(), codes.end());
  for (uint8_t code : out.reason_codes) {
    const bool known = v5 ? is_one_of(code, {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97,
                                             0x9E, 0xA1, 0xA2})
                          : is_one_of(code, {0x00, 0x01, 0x02, 0x80});
    if (!known) return protocol_error("invalid SUBACK reason code");
  }
  return {};
}

Status decode_unsubscribe(uint8_t flags, std::string_view body, Version v, Unsubscribe& out) {
  if (flags != 0x02) return malformed("UNSUBSCRIBE fixed header flags must be 0010");
  Reader r(body);
  if (Status st = read_packet_id(r, out.packet_id); !st.ok()) return st;
  if (v == Version::V5) {
    if (Status st = read_properties(r, PropertyContext::Unsubscribe, out.properties); !st.ok()) {
      return st;
    }
  } else {
    clear_properties(out.properties);
  }
  out.filters.clear();
  if (r.empty()) return protocol_error("UNSUBSCRIBE without topic filters");  // [MQTT-3.10.3-2]
  while (!r.empty()) {
    std::string_view filter;
    if (Status st = read_utf8(r, filter, "truncated topic filter"); !st.ok()) return st;
    out.filters.emplace_back(filter);
  }
  return {};
}

Status decode_unsuback(uint8_t flags, std::string_view body, Version v, Unsuback& out) {
  if (flags != 0) return malformed("UNSUBACK fixed header flags must be 0");
  Reader r(body);
  if (Status st = read_packet_id(r, out.packet_id); !st.ok()) return st;
  out.reason_codes.clear();
  if (v != Version::V5) {
    clear_properties(out.properties);
    if (!r.empty()) return malformed("trailing bytes after UNSUBACK");
    return {};
  }
  if (Status st = read_properties(r, PropertyContext::Unsuback, out.properties); !st.ok()) {
    return st;
  }
  if (r.empty()) return protocol_error("UNSUBACK without reason codes");
  const std::string_view codes = r.rest();
  out.reason_codes.assign(codes.begin(), codes.end());
  for (uint8_t code : out.reason_codes) {
    if (!is_one_of(code, {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91})) {
      return protocol_error("invalid UNSUBACK reason code");
    }
  }
  return {};
}

Status decode_empty(uint8_t flags, std::string_view body) {
  if (flags != 0) return malformed("fixed header flags must be 0");
  if (!body.empty()) return malformed("packet must have no body");
  return {};
}

Status decode_disconnect(uint8_t flags, std::string_view body, Version v, Disconnect& out) {
  if (flags != 0) return malformed("DISCONNECT fixed header flags must be 0");
  out.reason_code = reason::Success;
  clear_properties(out.properties);
  if (v != Version::V5) {
    if (!body.empty()) return malformed("3.1.1 DISCONNECT must have no body");
    return {};
  }
  // Section 3.14.2.1: no body means Normal disconnection; a 1-byte body has no properties.
  Reader r(body);
  if (r.empty()) return {};
  r.u8(out.reason_code);
  if (!is_one_of(out.reason_code, {0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D,
                                   0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99,
                                   0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2})) {
    return protocol_error("invalid DISCONNECT reason code");
  }
  if (!r.empty()) {
    if (Status st = read_properties(r, PropertyContext::Disconnect, out.properties); !st.ok()) {
      return st;
    }
  }
  if (!r.empty()) return malformed("trailing bytes after DISCONNECT");
  return {};
}

Status decode_auth(uint8_t flags, std::string_view body, Version v, Auth& out) {
  // Packet type 15 is reserved before 5.0.
  if (v != Version::V5) return malformed("AUTH before MQTT 5.0");
  if (flags != 0) return malformed("AUTH fixed header flags must be 0");
  out.reason_code = reason::Success;
  clear_properties(out.properties);
  // Section 3.15.2.1: both reason code and properties may be omitted, but not only the latter.
  Reader r(body);
  if (r.empty()) return {};
  r.u8(out.reason_code);
  if (!is_one_of(out.reason_code, {0x00, 0x18, 0x19})) {
    return protocol_error("invalid AUTH reason code");
  }
  if (Status st = read_properties(r, PropertyContext::Auth, out.properties); !st.ok()) return st;
  if (!r.empty()) return malformed("trailing bytes after AUTH");
  // Section 3.15.2.2.2: omitting the Authentication Method is a Protocol Error.
  if (!out.properties.authentication_method) return protocol_error("AUTH without method");
  return {};
}

// --- Encoding -------------------------------------------------------------------------------

void encode_connect(const Connect& p, std::string& out) {
  const bool v5 = p.version == Version::V5;
  emit(out, first_byte(PacketType::Connect), [&](auto& s) {
    s.string(p.version == Version::V31 ? "MQIsdp" : "MQTT");
    s.u8(static_cast<uint8_t>(static_cast<uint8_t>(p.version) |
                              (p.bridge && p.version != Version::V5 ? 0x80 : 0)));
    uint8_t flags = 0;
    if (p.clean_start) flags |= 0x02;
    if (p.will) {
      flags |= 0x04 | (p.will->qos & 0x03) << 3;
      if (p.will->retain) flags |= 0x20;
    }
    if (p.password) flags |= 0x40;
    if (p.username) flags |= 0x80;
    s.u8(flags);
    s.u16(p.keep_alive);
    if (v5) write_property_block(p.properties, s);
    s.string(p.client_id);
    if (p.will) {
      if (v5) write_property_block(p.will->properties, s);
      s.string(p.will->topic);
      s.string(p.will->payload);
    }
    if (p.username) s.string(*p.username);
    if (p.password) s.string(*p.password);
  });
}

void encode_connack(const Connack& p, Version v, std::string& out) {
  emit(out, first_byte(PacketType::Connack), [&](auto& s) {
    // MQTT 3.1 has no session present flag: the byte is reserved (0) there.
    s.u8(p.session_present && v != Version::V31 ? 0x01 : 0x00);
    if (v == Version::V5) {
      s.u8(p.reason_code);
      write_property_block(p.properties, s);
    } else {
      s.u8(connack_code_v311(p.reason_code));
    }
  });
}

PublishLayout encode_publish(const Publish& p, Version v, std::string& out) {
  // Hand-sized rather than through emit(): this is the fan-out hot path and needs the offset.
  const bool v5 = v == Version::V5;
  const uint8_t qos = p.qos & 0x03;
  const std::string_view topic = std::string_view(p.topic).substr(0, wire::kMaxString);
  const size_t props = v5 ? properties_size(p.properties) : 0;
  const size_t remaining = 2 + topic.size() + (qos > 0 ? 2 : 0) +
                           (v5 ? wire::varint_size(static_cast<uint32_t>(props)) + props : 0) +
                           p.payload.size();
  const size_t header = 1 + wire::varint_size(static_cast<uint32_t>(remaining));
  out.reserve(out.size() + header + remaining);

  wire::AppendSink w(out);
  w.u8(static_cast<uint8_t>(0x30 | (p.dup ? 0x08 : 0) | qos << 1 | (p.retain ? 0x01 : 0)));
  w.varint(static_cast<uint32_t>(remaining));
  w.string(topic);
  if (qos > 0) w.u16(p.packet_id);
  if (v5) {
    w.varint(static_cast<uint32_t>(props));
    write_properties(p.properties, w);
  }
  w.raw(p.payload);

  PublishLayout layout;
  layout.size = static_cast<uint32_t>(header + remaining);
  layout.packet_id_offset = qos > 0 ? static_cast<uint32_t>(header + 2 + topic.size()) : 0;
  return layout;
}

PublishLayout received_publish_layout(const FrameHeader& header, size_t packet_size,
                                      size_t topic_size, uint8_t qos) {
  PublishLayout layout;
  layout.size = static_cast<uint32_t>(packet_size);
  layout.packet_id_offset =
      qos > 0 ? static_cast<uint32_t>(header.header_size + 2 + topic_size) : 0;
  return layout;
}

void patch_publish(char* packet, const PublishLayout& layout, bool dup, uint8_t qos, bool retain,
                   uint16_t packet_id) {
  packet[0] = static_cast<char>(
      first_byte(PacketType::Publish,
                 static_cast<uint8_t>((dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0))));
  if (layout.packet_id_offset != 0) {
    packet[layout.packet_id_offset] = static_cast<char>(packet_id >> 8);
    packet[layout.packet_id_offset + 1] = static_cast<char>(packet_id & 0xFF);
  }
}

void encode_ack(const Ack& p, Version v, std::string& out) {
  const uint8_t flags = p.type == PacketType::Pubrel ? 0x02 : 0x00;
  const bool no_props = properties_empty(p.properties);
  emit(out, first_byte(p.type, flags), [&](auto& s) {
    s.u16(p.packet_id);
    if (v != Version::V5 || (p.reason_code == reason::Success && no_props)) return;
    s.u8(p.reason_code);
    if (!no_props) write_property_block(p.properties, s);
  });
}

void encode_subscribe(const Subscribe& p, Version v, std::string& out) {
  const bool v5 = v == Version::V5;
  emit(out, first_byte(PacketType::Subscribe, 0x02), [&](auto& s) {
    s.u16(p.packet_id);
    if (v5) write_property_block(p.properties, s);
    for (const SubscriptionRequest& sub : p.subscriptions) {
      s.string(sub.filter);
      uint8_t options = sub.qos & 0x03;
      if (v5) {
        if (sub.no_local) options |= 0x04;
        if (sub.retain_as_published) options |= 0x08;
        options |= (sub.retain_handling & 0x03) << 4;
      }
      s.u8(options);
    }
  });
}

void encode_suback(const Suback& p, Version v, std::string& out) {
  const bool v5 = v == Version::V5;
  emit(out, first_byte(PacketType::Suback), [&](auto& s) {
    s.u16(p.packet_id);
    if (v5) write_property_block(p.properties, s);
    for (uint8_t code : p.reason_codes) {
      // 3.1.1 knows a single failure code; 5.0's detailed ones all collapse onto it.
      s.u8(v5 || code < 0x80 ? code : reason::UnspecifiedError);
    }
  });
}

void encode_unsubscribe(const Unsubscribe& p, Version v, std::string& out) {
  emit(out, first_byte(PacketType::Unsubscribe, 0x02), [&](auto& s) {
    s.u16(p.packet_id);
    if (v == Version::V5) write_property_block(p.properties, s);
    for (const std::string& filter : p.filters)
      s.string(filter);
  });
}

void encode_unsuback(const Unsuback& p, Version v, std::string& out) {
  emit(out, first_byte(PacketType::Unsuback), [&](auto& s) {
    s.u16(p.packet_id);
    if (v != Version::V5) return;
    write_property_block(p.properties, s);
    for (uint8_t code : p.reason_codes)
      s.u8(code);
  });
}

void encode_pingreq(std::string& out) {
  out.append("\xC0\x00", 2);
}

void encode_pingresp(std::string& out) {
  out.append("\xD0\x00", 2);
}

void encode_disconnect(const Disconnect& p, Version v, std::string& out) {
  const bool no_props = properties_empty(p.properties);
  emit(out, first_byte(PacketType::Disconnect), [&](auto& s) {
    if (v != Version::V5 || (p.reason_code == reason::Success && no_props)) return;
    s.u8(p.reason_code);
    if (!no_props) write_property_block(p.properties, s);
  });
}

void encode_auth(const Auth& p, std::string& out) {
  const bool omit = p.reason_code == reason::Success && properties_empty(p.properties);
  emit(out, first_byte(PacketType::Auth), [&](auto& s) {
    if (omit) return;
    s.u8(p.reason_code);
    write_property_block(p.properties, s);
  });
}

uint8_t connack_code_v311(uint8_t reason_code) {
  switch (reason_code) {
    case reason::Success:
      return 0;
    case reason::UnsupportedProtocolVersion:
      return 1;
    case reason::ClientIdentifierNotValid:
      return 2;
    case reason::ServerUnavailable:
      return 3;
    case reason::BadUserNameOrPassword:
      return 4;
    case reason::NotAuthorized:
      return 5;
    default:
      return 3;
  }
}

}  // namespace starling::mqtt
