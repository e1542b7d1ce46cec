// MQTT 5.0 property blocks (section 2.2.2): which identifiers each packet may carry, how often,
// and their encoding. Private to src/mqtt; codec.h exposes encode_properties/properties_size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mqtt/codec.h"
#include "mqtt/packet.h"
#include "mqtt/wire.h"

namespace starling::mqtt {

// The property table of section 2.2.2.2 is keyed by these: a property outside its row is a
// Malformed Packet.
enum class PropertyContext : uint8_t {
  Connect,
  Connack,
  Publish,
  Will,
  PubAck,  // PUBACK, PUBREC, PUBREL and PUBCOMP share one row
  Subscribe,
  Suback,
  Unsubscribe,
  Unsuback,
  Disconnect,
  Auth,
};

// Resets every field but keeps vector capacity, so a reused Publish does not reallocate.
void clear_properties(Properties& p);

// Reads the property length and the block it announces into out (cleared first).
Status read_properties(wire::Reader& r, PropertyContext ctx, Properties& out);

// Writes the properties without the length prefix, in the field order of Properties.
template <class Sink>
void write_properties(const Properties& p, Sink& s) {
  auto byte = [&](uint8_t id, const std::optional<uint8_t>& v) {
    if (v) {
      s.u8(id);
      s.u8(*v);
    }
  };
  auto two = [&](uint8_t id, const std::optional<uint16_t>& v) {
    if (v) {
      s.u8(id);
      s.u16(*v);
    }
  };
  auto four = [&](uint8_t id, const std::optional<uint32_t>& v) {
    if (v) {
      s.u8(id);
      s.u32(*v);
    }
  };
  auto str = [&](uint8_t id, const std::optional<std::string>& v) {
    if (v) {
      s.u8(id);
      s.string(*v);
    }
  };
  byte(0x01, p.payload_format_indicator);
  four(0x02, p.message_expiry_interval);
  str(0x03, p.content_type);
  str(0x08, p.response_topic);
  str(0x09, p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) {
    s.u8(0x0B);
    s.varint(id);
  }
  four(0x11, p.session_expiry_interval);
  str(0x12, p.assigned_client_identifier);
  two(0x13, p.server_keep_alive);
  str(0x15, p.authentication_method);
  str(0x16, p.authentication_data);
  byte(0x17, p.request_problem_information);
  four(0x18, p.will_delay_interval);
  byte(0x19, p.request_response_information);
  str(0x1A, p.response_information);
  str(0x1C, p.server_reference);
  str(0x1F, p.reason_string);
  two(0x21, p.receive_maximum);
  two(0x22, p.topic_alias_maximum);
  two(0x23, p.topic_alias);
  byte(0x24, p.maximum_qos);
  byte(0x25, p.retain_available);
  for (const auto& [key, value] : p.user_properties) {
    s.u8(0x26);
    s.string(key);
    s.string(value);
  }
  four(0x27, p.maximum_packet_size);
  byte(0x28, p.wildcard_subscription_available);
  byte(0x29, p.subscription_identifier_available);
  byte(0x2A, p.shared_subscription_available);
}

// Property length varint followed by the properties.
template <class Sink>
void write_property_block(const Properties& p, Sink& s) {
  s.varint(static_cast<uint32_t>(properties_size(p)));
  write_properties(p, s);
}

}  // namespace starling::mqtt
