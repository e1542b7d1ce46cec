// The MQTT wire codec: fixed-header framing, decoding of every control packet into the values of
// packet.h with the validation the spec requires, and encoding back into bytes.
//
// Hand-written on purpose: it is the hot path. Decoders never throw and never read past the
// body they are given; a failure carries the reason code the spec names for it (0x81 Malformed
// Packet, 0x82 Protocol Error, 0x84 Unsupported Protocol Version, ...) and a short text that may
// be sent to the client as a reason string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mqtt/packet.h"

namespace starling::mqtt {

// Outcome of a decode. code == 0 means success.
struct Status {
  uint8_t code = reason::Success;
  const char* message = "";

  bool ok() const { return code == reason::Success; }
  static Status fail(uint8_t c, const char* m) { return Status{c, m}; }
};

// --- Framing ------------------------------------------------------------------------------

enum class FrameStatus : uint8_t {
  Incomplete,  // need more bytes
  Ready,       // header parsed; the whole packet may still be incomplete (check size)
  Malformed,   // remaining length varint longer than 4 bytes
  TooLarge,    // header_size + remaining_length > max_packet_size
};

struct FrameHeader {
  uint8_t first_byte = 0;         // type in the high nibble, flags in the low nibble
  uint32_t remaining_length = 0;  // length of the body
  uint32_t header_size = 0;       // 1 + bytes of the remaining length varint
  PacketType type() const { return static_cast<PacketType>(first_byte >> 4); }
  uint8_t flags() const { return first_byte & 0x0F; }
  size_t total_size() const { return size_t{header_size} + remaining_length; }
};

// Parses the fixed header at the start of buf. max_packet_size == 0 means no limit.
// Detects TooLarge as soon as the remaining length is known, before the body arrives.
FrameStatus read_frame_header(std::string_view buf, uint32_t max_packet_size, FrameHeader& out);

// Variable byte integer helpers (section 1.5.5).
void append_varint(std::string& out, uint32_t value);
size_t varint_size(uint32_t value);

// --- Decoding (body = the bytes after the fixed header) -------------------------------------

// Determines the version from the protocol name and level. An unknown level gives
// UnsupportedProtocolVersion (the caller answers with a CONNACK of 0x84, or 0x01 for 3.1.1).
// out.version is set as early as possible so the caller knows how to answer even on failure.
Status decode_connect(uint8_t flags, std::string_view body, Connect& out);
Status decode_connack(uint8_t flags, std::string_view body, Version v, Connack& out);
// A PUBLISH topic may be empty only in 5.0 when a topic alias is present; the codec checks
// form (UTF-8, no wildcards, QoS 3, packet id 0), the session resolves aliases.
Status decode_publish(uint8_t flags, std::string_view body, Version v, Publish& out);
// PUBACK, PUBREC, PUBREL, PUBCOMP. PUBREL must carry flags 0b0010, the others 0.
Status decode_ack(PacketType type, uint8_t flags, std::string_view body, Version v, Ack& out);
Status decode_subscribe(uint8_t flags, std::string_view body, Version v, Subscribe& out);
Status decode_suback(uint8_t flags, std::string_view body, Version v, Suback& out);
Status decode_unsubscribe(uint8_t flags, std::string_view body, Version v, Unsubscribe& out);
Status decode_unsuback(uint8_t flags, std::string_view body, Version v, Unsuback& out);
// PINGREQ, PINGRESP: flags 0 and an empty body.
Status decode_empty(uint8_t flags, std::string_view body);
Status decode_disconnect(uint8_t flags, std::string_view body, Version v, Disconnect& out);
Status decode_auth(uint8_t flags, std::string_view body, Version v, Auth& out);

// --- Encoding (appends one whole packet, fixed header included, to out) ---------------------

void encode_connect(const Connect& p, std::string& out);
void encode_connack(const Connack& p, Version v, std::string& out);

// Whether a connection's first byte can start a CONNECT (type 1, flags 0).
constexpr bool is_connect_first_byte(char byte) {
  return static_cast<uint8_t>(byte) == static_cast<uint8_t>(PacketType::Connect) << 4;
}

// Where the per-receiver fields of an encoded PUBLISH sit, relative to the packet start.
// The first byte (dup, qos, retain) is always at offset 0.
struct PublishLayout {
  uint32_t size = 0;              // whole packet
  uint32_t packet_id_offset = 0;  // 0 when qos == 0
};
PublishLayout encode_publish(const Publish& p, Version v, std::string& out);
// The layout of a PUBLISH as received (its frame header, topic and QoS), so that its bytes can
// be forwarded as they are and patched per receiver.
PublishLayout received_publish_layout(const FrameHeader& header, size_t packet_size,
                                      size_t topic_size, uint8_t qos);
// Sets an encoded PUBLISH's per-receiver fields in place: the first byte (DUP, QoS, RETAIN) and,
// when the layout has one, the packet identifier.
void patch_publish(char* packet, const PublishLayout& layout, bool dup, uint8_t qos, bool retain,
                   uint16_t packet_id);
// A reason code for a refused subscription in this version's SUBACK: 5.0 says which, 3.1.1
// has only 0x80.
constexpr uint8_t suback_failure(Version v, uint8_t reason_code) {
  return v == Version::V5 ? reason_code : reason::SubackFailureV311;
}

void encode_ack(const Ack& p, Version v, std::string& out);
void encode_subscribe(const Subscribe& p, Version v, std::string& out);
void encode_suback(const Suback& p, Version v, std::string& out);
void encode_unsubscribe(const Unsubscribe& p, Version v, std::string& out);
void encode_unsuback(const Unsuback& p, Version v, std::string& out);
void encode_pingreq(std::string& out);
void encode_pingresp(std::string& out);
// 3.1.1 DISCONNECT has no body; 5.0 omits reason code and properties when they are default.
void encode_disconnect(const Disconnect& p, Version v, std::string& out);
void encode_auth(const Auth& p, std::string& out);

// Encodes the property block (length varint + properties) of 5.0 packets.
void encode_properties(const Properties& props, std::string& out);
size_t properties_size(const Properties& props);  // without the length varint

// 3.1.1 CONNACK return code for a 5.0 reason code (0x84 -> 1, 0x85 -> 2, 0x88 -> 3, 0x86 -> 4,
// 0x87 -> 5, others -> 3).
uint8_t connack_code_v311(uint8_t reason_code);

}  // namespace starling::mqtt
