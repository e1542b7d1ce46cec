#include "http/publish.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <mutex>
#include <random>

#include "core/base64.h"
#include "core/event_loop.h"
#include "metrics/counters.h"
#include "mqtt/topic.h"

namespace starling::http {

namespace {

using nlohmann::json;

PublishError bad(std::string code, std::string message, int status = 400) {
  return PublishError{status, std::move(code), std::move(message)};
}

// MQTT strings are UTF-8 without U+0000 (mqtt::valid_utf8 checks both).
bool mqtt_string(std::string_view s) {
  return mqtt::valid_utf8(s);
}

// The fields of one publish as read from JSON or the query string, before validation.
struct Fields {
  std::string topic;
  bool has_topic = false;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  std::optional<uint32_t> expiry;
  broker::MessageProperties properties;
  bool has_properties = false;
};

// What only HTTP checks; the broker's rules (topic, limits, QoS, retain) are the front door's.
PublicationOrError build(Fields&& f, const config::Config& settings) {
  if (!f.has_topic) return bad("bad_topic", "\"topic\" is required");
  if (f.properties.payload_format_indicator.value_or(0) == 1 && !mqtt::valid_utf8(f.payload)) {
    return bad("bad_payload", "payload_format_indicator is 1 but the payload is not UTF-8");
  }
  // What no subscriber could receive is refused here rather than dropped for every one (an
  // MQTT publisher is held to this by its packet size limit).
  if (f.topic.size() + f.payload.size() > settings.mqtt.max_packet_size) {
    return bad("too_large",
               "topic and payload exceed mqtt.max_packet_size (" +
                   std::to_string(settings.mqtt.max_packet_size) + " bytes)",
               413);
  }
  broker::Publication pub;
  pub.topic = std::move(f.topic);
  pub.payload = std::move(f.payload);
  pub.qos = f.qos;
  pub.retain = f.retain;
  pub.expiry_interval = f.expiry;
  if (f.has_properties) {
    pub.properties = std::make_unique<const broker::MessageProperties>(std::move(f.properties));
  }
  return pub;
}

std::optional<PublishError> read_properties(const json& p, Fields& f) {
  if (!p.is_object()) return bad("bad_properties", "\"properties\" must be an object");
  for (const auto& [key, value] : p.items()) {
    if (key == "message_expiry_interval") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 0xFFFFFFFFull) {
        return bad("bad_properties", "message_expiry_interval must be an integer in 0..4294967295");
      }
      f.expiry = static_cast<uint32_t>(value.get<uint64_t>());
      continue;
    }
    if (key == "payload_format_indicator") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 1) {
        return bad("bad_properties", "payload_format_indicator must be 0 or 1");
      }
      f.properties.payload_format_indicator = static_cast<uint8_t>(value.get<uint64_t>());
    } else if (key == "content_type" || key == "response_topic" || key == "correlation_data") {
      if (!value.is_string()) return bad("bad_properties", key + " must be a string");
      std::string text = value.get<std::string>();
      if (key == "content_type") {
        if (!mqtt_string(text)) return bad("bad_properties", "content_type must be UTF-8");
        f.properties.content_type = std::move(text);
      } else if (key == "response_topic") {
        if (!mqtt::valid_topic_name(text)) {
          return bad("bad_properties", "response_topic must be a valid topic name");
        }
        f.properties.response_topic = std::move(text);
      } else {
        f.properties.correlation_data = std::move(text);
      }
    } else if (key == "user_properties") {
      if (!value.is_object()) {
        return bad("bad_properties", "user_properties must be an object of strings");
      }
      for (const auto& [name, v] : value.items()) {
        if (!v.is_string() || !mqtt_string(name) || !mqtt_string(v.get_ref<const std::string&>())) {
          return bad("bad_properties", "user_properties values must be UTF-8 strings");
        }
        f.properties.user_properties.emplace_back(name, v.get<std::string>());
      }
    } else {
      return bad("bad_properties", "unknown property \"" + key + "\"");
    }
    f.has_properties = true;
  }
  return std::nullopt;
}

// Strict decimal: digits only, within max.
std::optional<uint64_t> parse_uint(std::string_view text, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v > max) {
    return std::nullopt;
  }
  return v;
}

std::optional<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

// The front door's verdict as this request's answer (or one item's, in a bulk request).
struct Placed {
  int status = 0;
  std::string id;                         // 200, 202: the message's id
  std::optional<PublishError> error;      // otherwise
  std::shared_ptr<broker::AckGate> gate;  // the Kafka bridge's sync mode: answer after it
};

Placed placed(broker::PublishResult& result, const config::Config& settings) {
  if (!broker::refused_by_rules(result.verdict)) metrics::add(metrics::Counter::HttpPublishes);
  Placed p;
  if (broker::taken(result.verdict)) {
    p.status = result.verdict == broker::PublishVerdict::Delivered ? 200 : 202;
    p.id = next_message_id();
    p.gate = std::move(result.gate);
    return p;
  }
  if (result.gate) result.gate->arm(nullptr);  // answered now: nobody waits
  p.error = refusal(result.verdict, settings);
  p.status = p.error->status;
  return p;
}

// The broker's publisher for HTTP: no client id, no ACL (tokens decide who may publish).
broker::Publisher http_publisher(const config::Config& settings, bool with_bridge) {
  broker::Publisher from;
  from.settings = &settings;
  // With the Kafka bridge at any QoS: a 2xx means the bridge's buffer has it on disk.
  from.durable_at_qos0 = with_bridge;
  return from;
}

Response kafka_failed(const std::string& error) {
  return json_error(503, "kafka_failed", "Kafka did not acknowledge the message: " + error);
}

// Answers now when nothing durable is pending, else once the store has it.
std::optional<Response> after_durable(store::Store* store, uint64_t ticket, Response response,
                                      const RequestContext& ctx) {
  if (ticket == 0 || store->durable() >= ticket) return response;
  Responder responder = ctx.defer();
  store->when_durable(ticket, [responder, response = std::move(response)]() mutable {
    responder(std::move(response));
  });
  return std::nullopt;
}

// From a gate's callback (any thread): answers once ticket is durable.
void respond_when_durable(Responder responder, store::Store* store, uint64_t ticket,
                          Response answer) {
  if (ticket == 0 || store->durable() >= ticket) {
    responder(std::move(answer));
    return;
  }
  store->when_durable(
      ticket, [responder, answer = std::move(answer)]() mutable { responder(std::move(answer)); });
}

// The same, after the Kafka gate too (sync mode); a failed gate answers 503 instead.
std::optional<Response> after_gate(std::shared_ptr<broker::AckGate> gate, store::Store* store,
                                   uint64_t ticket, Response response, const RequestContext& ctx) {
  if (!gate) return after_durable(store, ticket, std::move(response), ctx);
  Responder responder = ctx.defer();
  gate->arm([responder, store, ticket, response = std::move(response)](
                bool ok, const std::string& error) mutable {
    respond_when_durable(responder, store, ticket, ok ? std::move(response) : kafka_failed(error));
  });
  return std::nullopt;
}

}  // namespace

std::string next_message_id() {
  static const uint32_t nonce = static_cast<uint32_t>(std::random_device{}());
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) & 0xFFFFFFFFFFFFull;
  // 8 hex digits of nonce, 12 of counter; by hand: this is on every publish.
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(20, '0');
  for (int i = 0; i < 8; ++i)
    id[7 - i] = kHex[(nonce >> (4 * i)) & 15];
  for (int i = 0; i < 12; ++i)
    id[19 - i] = kHex[(n >> (4 * i)) & 15];
  return id;
}

PublishError refusal(broker::PublishVerdict verdict, const config::Config& settings) {
  using V = broker::PublishVerdict;
  switch (verdict) {
    case V::InvalidTopic:
      return bad("bad_topic", "invalid topic name (empty, wildcards, or not UTF-8)");
    case V::TopicOverLimits:
      return bad("bad_topic", "topic name exceeds the configured limits");
    case V::ReservedTopic:
      return bad("reserved_topic", "$SYS and $share topics are the broker's own", 403);
    case V::NotAuthorized:
      return bad("not_authorized", "not authorized to publish to this topic", 403);
    case V::QosNotSupported:
      return bad("qos_not_supported",
                 "qos above the broker's maximum (" + std::to_string(settings.mqtt.max_qos) + ")");
    case V::RetainNotSupported:
      return bad("retain_not_supported", "retained messages are not available");
    case V::QueuesFull:
      return bad("not_placed",
                 "every matching subscriber refused the message (queue full or too large)", 503);
    case V::BridgeFull:
      return bad("bridge_full", "the Kafka bridge's buffer is full; retry later", 503);
    case V::Delivered:
    case V::NoSubscribers:
      break;
  }
  return bad("internal", "not refused", 500);
}

PublicationOrError publication_from_json(const json& item, const config::Config& settings) {
  if (!item.is_object()) return bad("bad_request", "a publish must be a JSON object");
  Fields f;
  bool base64 = false;
  const json* properties = nullptr;
  const json* payload = nullptr;
  for (const auto& [key, value] : item.items()) {
    if (key == "topic") {
      if (!value.is_string()) return bad("bad_topic", "\"topic\" must be a string");
      f.topic = value.get<std::string>();
      f.has_topic = true;
    } else if (key == "payload") {
      if (!value.is_string()) return bad("bad_payload", "\"payload\" must be a string");
      payload = &value;
    } else if (key == "payload_encoding") {
      if (value == "base64") {
        base64 = true;
      } else if (value != "plain") {
        return bad("bad_encoding", "\"payload_encoding\" must be \"plain\" or \"base64\"");
      }
    } else if (key == "qos") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 2) {
        return bad("bad_qos", "\"qos\" must be 0, 1 or 2");
      }
      f.qos = static_cast<uint8_t>(value.get<uint64_t>());
    } else if (key == "retain") {
      if (!value.is_boolean()) return bad("bad_request", "\"retain\" must be true or false");
      f.retain = value.get<bool>();
    } else if (key == "properties") {
      properties = &value;
    } else {
      return bad("bad_request", "unknown field \"" + key + "\"");
    }
  }
  if (payload) {
    const auto& text = payload->get_ref<const std::string&>();
    if (base64) {
      auto decoded = core::base64_decode(text);
      if (!decoded) return bad("bad_payload", "\"payload\" is not valid base64");
      f.payload = std::move(*decoded);
    } else {
      f.payload = text;
    }
  }
  if (properties) {
    if (auto error = read_properties(*properties, f)) return *error;
  }
  return build(std::move(f), settings);
}

PublicationOrError publication_from_query(const QueryParams& query, std::string_view body,
                                          const config::Config& settings) {
  Fields f;
  for (const auto& [name, value] : query) {
    if (name == "topic") {
      f.topic = value;
      f.has_topic = true;
    } else if (name == "qos") {
      auto qos = parse_uint(value, 2);
      if (!qos) return bad("bad_qos", "qos must be 0, 1 or 2");
      f.qos = static_cast<uint8_t>(*qos);
    } else if (name == "retain") {
      auto retain = parse_bool(value);
      if (!retain) return bad("bad_request", "retain must be true or false");
      f.retain = *retain;
    } else if (name == "message_expiry_interval") {
      auto expiry = parse_uint(value, 0xFFFFFFFFull);
      if (!expiry) return bad("bad_properties", "message_expiry_interval must be 0..4294967295");
      f.expiry = static_cast<uint32_t>(*expiry);
    } else if (name == "payload_format_indicator") {
      auto pfi = parse_uint(value, 1);
      if (!pfi) return bad("bad_properties", "payload_format_indicator must be 0 or 1");
      f.properties.payload_format_indicator = static_cast<uint8_t>(*pfi);
      f.has_properties = true;
    } else if (name == "content_type") {
      if (!mqtt_string(value)) return bad("bad_properties", "content_type must be UTF-8");
      f.properties.content_type = value;
      f.has_properties = true;
    } else if (name == "response_topic") {
      if (!mqtt::valid_topic_name(value)) {
        return bad("bad_properties", "response_topic must be a valid topic name");
      }
      f.properties.response_topic = value;
      f.has_properties = true;
    } else if (name == "correlation_data") {
      f.properties.correlation_data = value;
      f.has_properties = true;
    } else {
      return bad("bad_request", "unknown query parameter \"" + name + "\"");
    }
  }
  f.payload.assign(body);
  return build(std::move(f), settings);
}

std::optional<Response> publish_one(broker::Broker& broker, const Request& request,
                                    const QueryParams& query, const RequestContext& ctx) {
  PublicationOrError parsed;
  if (find_param(query, "topic")) {
    parsed = publication_from_query(query, request.body, ctx.settings);
  } else if (!query.empty()) {
    return json_error(400, "bad_request",
                      "a raw body needs ?topic=; a JSON body takes no query parameters");
  } else {
    json body = json::parse(request.body, nullptr, false);
    if (body.is_discarded()) return json_error(400, "bad_json", "the body is not valid JSON");
    parsed = publication_from_json(body, ctx.settings);
  }
  if (auto* error = std::get_if<PublishError>(&parsed)) {
    return json_error(error->status, error->code, error->message);
  }

  // Like an MQTT QoS 1/2 or retained PUBLISH: answered once what it changed is durable.
  store::Store* const store = broker.store();
  broker::PublishResult result = broker.ingress().publish(
      std::move(std::get<broker::Publication>(parsed)),
      http_publisher(ctx.settings, broker.bridge() != nullptr), core::EventLoop::now());
  Placed p = placed(result, ctx.settings);
  Response response;
  if (p.status == 200) {
    response = json_response(200, R"({"id":")" + p.id + "\"}");
  } else if (p.status == 202) {
    response = json_response(202, R"({"id":")" + p.id + R"(","reason_code":16,)" +
                                      R"("message":"no matching subscribers"})");
  } else {
    return json_error(p.error->status, p.error->code, p.error->message);
  }
  return after_gate(std::move(p.gate), store, result.ticket, std::move(response), ctx);
}

std::optional<Response> publish_bulk(broker::Broker& broker, const Request& request,
                                     const RequestContext& ctx) {
  const auto now = core::EventLoop::now();
  json items = json::parse(request.body, nullptr, false);
  if (items.is_discarded()) return json_error(400, "bad_json", "the body is not valid JSON");
  if (!items.is_array()) {
    return json_error(400, "bad_request", "the body must be a JSON array of publishes");
  }
  store::Store* const store = broker.store();
  const broker::Publisher from = http_publisher(ctx.settings, broker.bridge() != nullptr);
  // One store batch for the whole request: one durable wait, one response. Items held by the
  // Kafka bridge (sync mode) join one gate; a failed item is answered 503 in its place.
  broker::Ingress::Batch durable(broker.ingress());
  auto results = std::make_shared<nlohmann::ordered_json>(nlohmann::ordered_json::array());
  auto failures = std::make_shared<std::vector<std::pair<size_t, std::string>>>();
  auto failures_mutex = std::make_shared<std::mutex>();
  std::shared_ptr<broker::AckGate> all;
  for (const json& item : items) {
    PublicationOrError parsed = publication_from_json(item, ctx.settings);
    if (auto* error = std::get_if<PublishError>(&parsed)) {
      results->push_back(
          {{"status", error->status}, {"error", error->code}, {"message", error->message}});
      continue;
    }
    broker::PublishResult result =
        durable.publish(std::move(std::get<broker::Publication>(parsed)), from, now);
    Placed p = placed(result, ctx.settings);
    if (p.gate) {
      if (!all) all = std::make_shared<broker::AckGate>();
      all->expect();
      p.gate->arm([all, failures, failures_mutex, index = results->size()](
                      bool ok, const std::string& error) {
        if (!ok) {
          std::lock_guard lock(*failures_mutex);
          failures->emplace_back(index, error);
        }
        all->settle();
      });
    }
    if (p.status == 200) {
      results->push_back({{"status", 200}, {"id", p.id}});
    } else if (p.status == 202) {
      results->push_back({{"status", 202},
                          {"id", p.id},
                          {"reason_code", mqtt::reason::NoMatchingSubscribers},
                          {"message", "no matching subscribers"}});
    } else {
      results->push_back(
          {{"status", p.status}, {"error", p.error->code}, {"message", p.error->message}});
    }
  }
  const uint64_t ticket = durable.commit();
  auto render = [results, failures, failures_mutex] {
    {
      std::lock_guard lock(*failures_mutex);
      for (const auto& [index, error] : *failures) {
        (*results)[index] = {{"status", 503},
                             {"error", "kafka_failed"},
                             {"message", "Kafka did not acknowledge the message: " + error}};
      }
    }
    nlohmann::ordered_json body = {{"results", std::move(*results)}};
    return json_response(200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  if (!all) return after_durable(store, ticket, render(), ctx);
  Responder responder = ctx.defer();
  all->arm([responder, store, ticket, render](bool, const std::string&) {
    respond_when_durable(responder, store, ticket, render());
  });
  return std::nullopt;
}

}  // namespace starling::http
