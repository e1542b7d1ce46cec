// MQTT control packets as plain values, for 3.1, 3.1.1 and 5.0.
// Knows nothing of sockets or sessions: src/mqtt/codec.h turns bytes into these and back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace starling::mqtt {

enum class Version : uint8_t { V31 = 3, V311 = 4, V5 = 5 };

enum class PacketType : uint8_t {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Unsubscribe = 10,
  Unsuback = 11,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
  Auth = 15,
};

// MQTT 5.0 reason codes (section 2.4). 3.1.1 CONNACK return codes are mapped by the codec.
namespace reason {
inline constexpr uint8_t Success = 0x00;
inline constexpr uint8_t GrantedQos1 = 0x01;
inline constexpr uint8_t GrantedQos2 = 0x02;
inline constexpr uint8_t DisconnectWithWill = 0x04;
inline constexpr uint8_t NoMatchingSubscribers = 0x10;
inline constexpr uint8_t NoSubscriptionExisted = 0x11;
inline constexpr uint8_t ContinueAuthentication = 0x18;
inline constexpr uint8_t ReAuthenticate = 0x19;
inline constexpr uint8_t UnspecifiedError = 0x80;
inline constexpr uint8_t MalformedPacket = 0x81;
inline constexpr uint8_t ProtocolError = 0x82;
inline constexpr uint8_t ImplementationSpecificError = 0x83;
inline constexpr uint8_t UnsupportedProtocolVersion = 0x84;
inline constexpr uint8_t ClientIdentifierNotValid = 0x85;
inline constexpr uint8_t BadUserNameOrPassword = 0x86;
inline constexpr uint8_t NotAuthorized = 0x87;
inline constexpr uint8_t ServerUnavailable = 0x88;
inline constexpr uint8_t ServerBusy = 0x89;
inline constexpr uint8_t Banned = 0x8A;
inline constexpr uint8_t ServerShuttingDown = 0x8B;
inline constexpr uint8_t BadAuthenticationMethod = 0x8C;
inline constexpr uint8_t KeepAliveTimeout = 0x8D;
inline constexpr uint8_t SessionTakenOver = 0x8E;
inline constexpr uint8_t TopicFilterInvalid = 0x8F;
inline constexpr uint8_t TopicNameInvalid = 0x90;
inline constexpr uint8_t PacketIdentifierInUse = 0x91;
inline constexpr uint8_t PacketIdentifierNotFound = 0x92;
inline constexpr uint8_t ReceiveMaximumExceeded = 0x93;
inline constexpr uint8_t TopicAliasInvalid = 0x94;
inline constexpr uint8_t PacketTooLarge = 0x95;
inline constexpr uint8_t MessageRateTooHigh = 0x96;
inline constexpr uint8_t QuotaExceeded = 0x97;
inline constexpr uint8_t AdministrativeAction = 0x98;
inline constexpr uint8_t PayloadFormatInvalid = 0x99;
inline constexpr uint8_t RetainNotSupported = 0x9A;
inline constexpr uint8_t QosNotSupported = 0x9B;
inline constexpr uint8_t UseAnotherServer = 0x9C;
inline constexpr uint8_t ServerMoved = 0x9D;
inline constexpr uint8_t SharedSubscriptionsNotSupported = 0x9E;
inline constexpr uint8_t ConnectionRateExceeded = 0x9F;
inline constexpr uint8_t MaximumConnectTime = 0xA0;
inline constexpr uint8_t SubscriptionIdentifiersNotSupported = 0xA1;
inline constexpr uint8_t WildcardSubscriptionsNotSupported = 0xA2;
// 3.1.1 SUBACK: the one return code for a refused subscription (section 3.9.3).
inline constexpr uint8_t SubackFailureV311 = 0x80;
// A reason code of 0x80 or above is a failure (section 2.4).
constexpr bool is_failure(uint8_t code) {
  return code >= 0x80;
}
}  // namespace reason

// Every MQTT 5.0 property (section 2.2.2.2). Unset optionals are not encoded.
// Subscription identifiers may repeat in PUBLISH; user properties keep their order.
struct Properties {
  std::optional<uint8_t> payload_format_indicator;                   // 0x01
  std::optional<uint32_t> message_expiry_interval;                   // 0x02
  std::optional<std::string> content_type;                           // 0x03
  std::optional<std::string> response_topic;                         // 0x08
  std::optional<std::string> correlation_data;                       // 0x09 (binary)
  std::vector<uint32_t> subscription_identifiers;                    // 0x0B (varint)
  std::optional<uint32_t> session_expiry_interval;                   // 0x11
  std::optional<std::string> assigned_client_identifier;             // 0x12
  std::optional<uint16_t> server_keep_alive;                         // 0x13
  std::optional<std::string> authentication_method;                  // 0x15
  std::optional<std::string> authentication_data;                    // 0x16 (binary)
  std::optional<uint8_t> request_problem_information;                // 0x17
  std::optional<uint32_t> will_delay_interval;                       // 0x18
  std::optional<uint8_t> request_response_information;               // 0x19
  std::optional<std::string> response_information;                   // 0x1A
  std::optional<std::string> server_reference;                       // 0x1C
  std::optional<std::string> reason_string;                          // 0x1F
  std::optional<uint16_t> receive_maximum;                           // 0x21
  std::optional<uint16_t> topic_alias_maximum;                       // 0x22
  std::optional<uint16_t> topic_alias;                               // 0x23
  std::optional<uint8_t> maximum_qos;                                // 0x24
  std::optional<uint8_t> retain_available;                           // 0x25
  std::vector<std::pair<std::string, std::string>> user_properties;  // 0x26
  std::optional<uint32_t> maximum_packet_size;                       // 0x27
  std::optional<uint8_t> wildcard_subscription_available;            // 0x28
  std::optional<uint8_t> subscription_identifier_available;          // 0x29
  std::optional<uint8_t> shared_subscription_available;              // 0x2A

  bool operator==(const Properties&) const = default;
};

struct Will {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  Properties properties;  // will properties (5.0)
  bool operator==(const Will&) const = default;
};

struct Connect {
  Version version = Version::V311;
  std::string protocol_name;  // "MQTT" or "MQIsdp"
  bool clean_start = true;
  uint16_t keep_alive = 0;
  std::string client_id;
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary
  Properties properties;
  // 3.1/3.1.1 only: protocol level with 0x80, Mosquitto's bridge flag (try_private).
  bool bridge = false;
  bool operator==(const Connect&) const = default;
};

struct Connack {
  bool session_present = false;
  uint8_t reason_code = reason::Success;  // 5.0 reason code; encoder maps to 3.1.1 return codes
  Properties properties;
  bool operator==(const Connack&) const = default;
};

struct Publish {
  bool dup = false;
  uint8_t qos = 0;
  bool retain = false;
  std::string topic;
  uint16_t packet_id = 0;  // only when qos > 0
  Properties properties;
  std::string payload;
  bool operator==(const Publish&) const = default;
};

// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
struct Ack {
  PacketType type = PacketType::Puback;
  uint16_t packet_id = 0;
  uint8_t reason_code = reason::Success;
  Properties properties;
  bool operator==(const Ack&) const = default;
};

struct SubscriptionRequest {
  std::string filter;
  uint8_t qos = 0;
  bool no_local = false;             // 5.0
  bool retain_as_published = false;  // 5.0
  uint8_t retain_handling = 0;       // 5.0: 0, 1 or 2
  bool operator==(const SubscriptionRequest&) const = default;
};

struct Subscribe {
  uint16_t packet_id = 0;
  Properties properties;  // subscription identifier, user properties
  std::vector<SubscriptionRequest> subscriptions;
  bool operator==(const Subscribe&) const = default;
};

struct Suback {
  uint16_t packet_id = 0;
  Properties properties;
  std::vector<uint8_t> reason_codes;  // granted QoS or failure (0x80 and up)
  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  uint16_t packet_id = 0;
  Properties properties;
  std::vector<std::string> filters;
  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  uint16_t packet_id = 0;
  Properties properties;
  std::vector<uint8_t> reason_codes;  // 5.0 only; empty for 3.1.1
  bool operator==(const Unsuback&) const = default;
};

struct Disconnect {
  uint8_t reason_code = reason::Success;
  Properties properties;
  bool operator==(const Disconnect&) const = default;
};

struct Auth {
  uint8_t reason_code = reason::Success;
  Properties properties;
  bool operator==(const Auth&) const = default;
};

}  // namespace starling::mqtt
