// POST /api/v1/publish and /api/v1/publish/bulk: an HTTP request becomes a broker::Publication
// and goes through the broker's front door (broker::Ingress) like an MQTT PUBLISH (the same
// rules, routing, retained, durability); its verdict becomes the HTTP status. With a store, a
// QoS 1/2 or retained publish is answered only once what it changed is durable.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <nlohmann/json_fwd.hpp>

#include "broker/broker.h"
#include "config/config.h"
#include "http/api.h"
#include "http/parser/request_parser.h"
#include "http/parser/url.h"
#include "http/response.h"

namespace starling::http {

struct PublishError {
  int status = 400;
  std::string code;  // "bad_topic", "bad_payload", ...
  std::string message;
};

using PublicationOrError = std::variant<broker::Publication, PublishError>;

// One publish from its JSON object: {"topic", "payload", "payload_encoding", "qos", "retain",
// "properties": {...}}. Checks what only HTTP checks (the body, UTF-8 payloads, the size); the
// broker's rules are the front door's.
PublicationOrError publication_from_json(const nlohmann::json& item,
                                         const config::Config& settings);
// A raw body published to ?topic=&qos=&retain= (and optional property parameters).
PublicationOrError publication_from_query(const QueryParams& query, std::string_view body,
                                          const config::Config& settings);
// The HTTP answer to a publish the front door refused.
PublishError refusal(broker::PublishVerdict verdict, const config::Config& settings);

// A unique id for each published message ("<process nonce><counter>", 20 hex digits).
std::string next_message_id();

std::optional<Response> publish_one(broker::Broker& broker, const Request& request,
                                    const QueryParams& query, const RequestContext& ctx);
std::optional<Response> publish_bulk(broker::Broker& broker, const Request& request,
                                     const RequestContext& ctx);

}  // namespace starling::http
