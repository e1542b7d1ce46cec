#include "mqtt/properties.h"

#include <optional>
#include <string>
#include <string_view>

#include "mqtt/topic.h"

namespace starling::mqtt {
namespace {

using PC = PropertyContext;

constexpr uint16_t in(PC c) {
  return uint16_t(1u << static_cast<unsigned>(c));
}

constexpr uint16_t kPublishAndWill = in(PC::Publish) | in(PC::Will);
constexpr uint16_t kEverywhere = in(PC::Connect) | in(PC::Connack) | in(PC::Publish) |
                                 in(PC::Will) | in(PC::PubAck) | in(PC::Subscribe) |
                                 in(PC::Suback) | in(PC::Unsubscribe) | in(PC::Unsuback) |
                                 in(PC::Disconnect) | in(PC::Auth);

// Table 2-4 of section 2.2.2.2. Zero for identifiers the spec does not define.
constexpr uint16_t allowed_in(uint8_t id) {
  switch (id) {
    case 0x01:  // Payload Format Indicator
    case 0x02:  // Message Expiry Interval
    case 0x03:  // Content Type
    case 0x08:  // Response Topic
    case 0x09:  // Correlation Data
      return kPublishAndWill;
    case 0x0B:  // Subscription Identifier
      return in(PC::Publish) | in(PC::Subscribe);
    case 0x11:  // Session Expiry Interval
      return in(PC::Connect) | in(PC::Connack) | in(PC::Disconnect);
    case 0x12:  // Assigned Client Identifier
    case 0x13:  // Server Keep Alive
    case 0x1A:  // Response Information
    case 0x24:  // Maximum QoS
    case 0x25:  // Retain Available
    case 0x28:  // Wildcard Subscription Available
    case 0x29:  // Subscription Identifier Available
    case 0x2A:  // Shared Subscription Available
      return in(PC::Connack);
    case 0x15:  // Authentication Method
    case 0x16:  // Authentication Data
      return in(PC::Connect) | in(PC::Connack) | in(PC::Auth);
    case 0x17:  // Request Problem Information
    case 0x19:  // Request Response Information
      return in(PC::Connect);
    case 0x18:  // Will Delay Interval
      return in(PC::Will);
    case 0x1C:  // Server Reference
      return in(PC::Connack) | in(PC::Disconnect);
    case 0x1F:  // Reason String
      return in(PC::Connack) | in(PC::PubAck) | in(PC::Suback) | in(PC::Unsuback) |
             in(PC::Disconnect) | in(PC::Auth);
    case 0x21:  // Receive Maximum
    case 0x22:  // Topic Alias Maximum
    case 0x27:  // Maximum Packet Size
      return in(PC::Connect) | in(PC::Connack);
    case 0x23:  // Topic Alias
      return in(PC::Publish);
    case 0x26:  // User Property
      return kEverywhere;
    default:
      return 0;
  }
}

Status malformed(const char* m) {
  return Status::fail(reason::MalformedPacket, m);
}
Status protocol_error(const char* m) {
  return Status::fail(reason::ProtocolError, m);
}

// Each property may appear once, except User Property and (in PUBLISH) Subscription Identifier;
// a repeat is a Protocol Error, stated per property throughout section 3.
const Status kDuplicate{reason::ProtocolError, "duplicate property"};
const Status kTruncated{reason::MalformedPacket, "truncated property"};

class PropertyReader {
 public:
  explicit PropertyReader(wire::Reader& r) : r_(r) {}

  Status byte(std::optional<uint8_t>& slot) {
    uint8_t v = 0;
    if (slot) return kDuplicate;
    if (!r_.u8(v)) return kTruncated;
    slot = v;
    return {};
  }
  // The spec's yes/no bytes: any value other than 0 or 1 is a Protocol Error.
  Status flag(std::optional<uint8_t>& slot) {
    Status st = byte(slot);
    if (st.ok() && *slot > 1) return protocol_error("property value must be 0 or 1");
    return st;
  }
  Status two(std::optional<uint16_t>& slot) {
    uint16_t v = 0;
    if (slot) return kDuplicate;
    if (!r_.u16(v)) return kTruncated;
    slot = v;
    return {};
  }
  Status four(std::optional<uint32_t>& slot) {
    uint32_t v = 0;
    if (slot) return kDuplicate;
    if (!r_.u32(v)) return kTruncated;
    slot = v;
    return {};
  }
  Status utf8(std::optional<std::string>& slot) {
    std::string_view v;
    if (slot) return kDuplicate;
    if (!r_.string(v)) return kTruncated;
    if (!valid_utf8(v)) return malformed("property string is not valid UTF-8");
    slot.emplace(v);
    return {};
  }
  Status binary(std::optional<std::string>& slot) {
    std::string_view v;
    if (slot) return kDuplicate;
    if (!r_.string(v)) return kTruncated;
    slot.emplace(v);
    return {};
  }
  Status user_property(std::vector<std::pair<std::string, std::string>>& list) {
    std::string_view key, value;
    if (!r_.string(key) || !r_.string(value)) return kTruncated;
    if (!valid_utf8(key) || !valid_utf8(value)) {
      return malformed("user property is not valid UTF-8");
    }
    list.emplace_back(key, value);
    return {};
  }
  Status subscription_identifier(std::vector<uint32_t>& list, bool may_repeat) {
    uint32_t v = 0;
    if (!may_repeat && !list.empty()) return kDuplicate;
    if (!r_.varint(v)) return malformed("bad subscription identifier varint");
    if (v == 0) return protocol_error("subscription identifier 0");
    list.push_back(v);
    return {};
  }

 private:
  wire::Reader& r_;
};

Status read_one(uint8_t id, PropertyReader& pr, PropertyContext ctx, Properties& out) {
  switch (id) {
    case 0x01:
      return pr.flag(out.payload_format_indicator);
    case 0x02:
      return pr.four(out.message_expiry_interval);
    case 0x03:
      return pr.utf8(out.content_type);
    case 0x08: {
      Status st = pr.utf8(out.response_topic);
      // Section 3.3.2.3.5: a Topic Name, so wildcards (and emptiness) are not allowed.
      if (st.ok() && !valid_topic_name(*out.response_topic)) {
        return protocol_error("response topic is not a valid topic name");
      }
      return st;
    }
    case 0x09:
      return pr.binary(out.correlation_data);
    case 0x0B:
      return pr.subscription_identifier(out.subscription_identifiers, ctx == PC::Publish);
    case 0x11:
      return pr.four(out.session_expiry_interval);
    case 0x12:
      return pr.utf8(out.assigned_client_identifier);
    case 0x13:
      return pr.two(out.server_keep_alive);
    case 0x15:
      return pr.utf8(out.authentication_method);
    case 0x16:
      return pr.binary(out.authentication_data);
    case 0x17:
      return pr.flag(out.request_problem_information);
    case 0x18:
      return pr.four(out.will_delay_interval);
    case 0x19:
      return pr.flag(out.request_response_information);
    case 0x1A:
      return pr.utf8(out.response_information);
    case 0x1C:
      return pr.utf8(out.server_reference);
    case 0x1F:
      return pr.utf8(out.reason_string);
    case 0x21: {
      Status st = pr.two(out.receive_maximum);
      if (st.ok() && *out.receive_maximum == 0) return protocol_error("receive maximum 0");
      return st;
    }
    case 0x22:
      return pr.two(out.topic_alias_maximum);
    case 0x23: {
      Status st = pr.two(out.topic_alias);
      // Section 3.3.4 calls alias 0 a Protocol Error and names the code: 0x94.
      if (st.ok() && *out.topic_alias == 0) {
        return Status::fail(reason::TopicAliasInvalid, "topic alias 0");
      }
      return st;
    }
    case 0x24:
      return pr.flag(out.maximum_qos);
    case 0x25:
      return pr.flag(out.retain_available);
    case 0x26:
      return pr.user_property(out.user_properties);
    case 0x27: {
      Status st = pr.four(out.maximum_packet_size);
      if (st.ok() && *out.maximum_packet_size == 0) return protocol_error("maximum packet size 0");
      return st;
    }
    case 0x28:
      return pr.flag(out.wildcard_subscription_available);
    case 0x29:
      return pr.flag(out.subscription_identifier_available);
    case 0x2A:
      return pr.flag(out.shared_subscription_available);
    default:
      return malformed("unknown property");  // unreachable: allowed_in() filtered it
  }
}

}  // namespace

void clear_properties(Properties& p) {
  p.payload_format_indicator.reset();
  p.message_expiry_interval.reset();
  p.content_type.reset();
  p.response_topic.reset();
  p.correlation_data.reset();
  p.subscription_identifiers.clear();
  p.session_expiry_interval.reset();
  p.assigned_client_identifier.reset();
  p.server_keep_alive.reset();
  p.authentication_method.reset();
  p.authentication_data.reset();
  p.request_problem_information.reset();
  p.will_delay_interval.reset();
  p.request_response_information.reset();
  p.response_information.reset();
  p.server_reference.reset();
  p.reason_string.reset();
  p.receive_maximum.reset();
  p.topic_alias_maximum.reset();
  p.topic_alias.reset();
  p.maximum_qos.reset();
  p.retain_available.reset();
  p.user_properties.clear();
  p.maximum_packet_size.reset();
  p.wildcard_subscription_available.reset();
  p.subscription_identifier_available.reset();
  p.shared_subscription_available.reset();
}

Status read_properties(wire::Reader& r, PropertyContext ctx, Properties& out) {
  clear_properties(out);
  uint32_t len = 0;
  std::string_view block;
  if (!r.varint(len))
    return malformed(r.empty() ? "missing property length" : "bad property length");
  if (!r.bytes(len, block)) return malformed("property length exceeds packet");
  wire::Reader br(block);
  PropertyReader pr(br);
  while (!br.empty()) {
    // The identifier is formally a varint, but every defined one fits in a single byte, so a
    // continuation bit can only introduce an unknown identifier.
    uint8_t id = 0;
    br.u8(id);
    if ((allowed_in(id) & in(ctx)) == 0) {
      return malformed(allowed_in(id) == 0 ? "unknown property" : "property not allowed here");
    }
    if (Status st = read_one(id, pr, ctx, out); !st.ok()) return st;
  }
  // Sections 3.1.2.11.10, 3.2.2.3.18 and 3.15.2.2.3.
  if (out.authentication_data && !out.authentication_method) {
    return protocol_error("authentication data without authentication method");
  }
  return {};
}

size_t properties_size(const Properties& props) {
  wire::SizeSink s;
  write_properties(props, s);
  return s.size();
}

void encode_properties(const Properties& props, std::string& out) {
  wire::AppendSink s(out);
  write_property_block(props, s);
}

}  // namespace starling::mqtt
