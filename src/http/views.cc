#include "http/views.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>

#include "core/base64.h"
#include "core/event_loop.h"
#include "metrics/counters.h"
#include "mqtt/packet.h"
#include "mqtt/topic.h"
#include "starling/version.h"

namespace starling::http {

namespace {

using json = nlohmann::ordered_json;  // keys in the order written

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 1000;

// Client ids, topics and payloads may hold bytes that are not UTF-8: replaced, not thrown on.
Response ok(const json& body) {
  return json_response(200, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

struct Paging {
  size_t offset = 0;
  size_t limit = kDefaultLimit;
};

// ?offset=&limit= and the other parameters a view accepts; anything else is an error.
std::optional<Response> read_paging(const QueryParams& query, Paging& paging,
                                    std::initializer_list<std::string_view> allowed) {
  for (const auto& [name, value] : query) {
    if (name == "offset" || name == "limit") {
      size_t v = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
        return json_error(400, "bad_request", name + " must be a non-negative integer");
      }
      if (name == "offset") {
        paging.offset = v;
      } else {
        if (v == 0 || v > kMaxLimit) {
          return json_error(400, "bad_request", "limit must be in 1.." + std::to_string(kMaxLimit));
        }
        paging.limit = v;
      }
    } else if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return json_error(400, "bad_request", "unknown query parameter \"" + name + "\"");
    }
  }
  return std::nullopt;
}

const char* version_name(mqtt::Version v) {
  switch (v) {
    case mqtt::Version::V31:
      return "3.1";
    case mqtt::Version::V311:
      return "3.1.1";
    case mqtt::Version::V5:
      return "5.0";
  }
  return "unknown";
}

json client_json(const broker::SessionInfo& i) {
  return {{"client_id", i.client_id},
          {"connected", i.connected},
          {"protocol_version", version_name(i.version)},
          {"peer", i.peer},
          {"subscriptions", i.subscriptions},
          {"queued", i.queued},
          {"inflight", i.inflight},
          {"session_expiry_interval", i.expiry_interval}};
}

// Appends a subscription's options to j (after its filter and client id).
void put_options(json& j, const broker::SubscriptionOptions& o) {
  j["qos"] = o.qos;
  j["no_local"] = o.no_local;
  j["retain_as_published"] = o.retain_as_published;
  j["retain_handling"] = o.retain_handling;
  if (o.subscription_id) j["subscription_identifier"] = o.subscription_id;
}

// A payload as text when it is UTF-8, else base64, with the encoding named.
void put_payload(json& j, const std::string& payload) {
  if (mqtt::valid_utf8(payload)) {
    j["payload"] = payload;
    j["payload_encoding"] = "plain";
  } else {
    j["payload"] = core::base64_encode(payload);
    j["payload_encoding"] = "base64";
  }
}

}  // namespace

Response list_clients(broker::Broker& broker, const QueryParams& query) {
  Paging paging;
  if (auto error = read_paging(query, paging, {"prefix"})) return *error;
  const std::string* prefix = find_param(query, "prefix");
  broker::ClientPage page =
      broker.clients(prefix ? *prefix : std::string(), paging.offset, paging.limit);
  json clients = json::array();
  for (const auto& c : page.clients)
    clients.push_back(client_json(c));
  return ok({{"total", page.total},
             {"offset", paging.offset},
             {"limit", paging.limit},
             {"clients", std::move(clients)}});
}

Response show_client(broker::Broker& broker, const std::string& client_id) {
  auto info = broker.client(client_id);
  if (!info) return json_error(404, "not_found", "no session with this client id");
  json j = client_json(*info);
  json filters = json::array();
  for (const auto& s : broker.subscriptions(client_id, 0, SIZE_MAX).subscriptions) {
    json f = {{"filter", s.filter}};
    put_options(f, s.options);
    filters.push_back(std::move(f));
  }
  j["subscription_list"] = std::move(filters);
  return ok(j);
}

Response kick_client(broker::Broker& broker, const std::string& client_id) {
  bool found = false;
  broker::Attachment link = broker.connection_of(client_id, found);
  if (!found) return json_error(404, "not_found", "no session with this client id");
  if (!link) return json_error(409, "not_connected", "the client is not connected");
  if (!broker.connections().attached()) {
    return json_error(503, "unavailable", "no connections to kick");
  }
  // DISCONNECT 0x98 (Administrative action) on 5.0; older clients are just closed.
  broker.connections().kick(link, mqtt::reason::AdministrativeAction);
  return ok({{"client_id", client_id}, {"kicked", true}});
}

Response list_subscriptions(broker::Broker& broker, const QueryParams& query) {
  Paging paging;
  if (auto error = read_paging(query, paging, {"client_id"})) return *error;
  const std::string* client_id = find_param(query, "client_id");
  broker::SubscriptionPage page =
      broker.subscriptions(client_id ? *client_id : std::string(), paging.offset, paging.limit);
  json subs = json::array();
  for (const auto& s : page.subscriptions) {
    json j = {{"client_id", s.client_id}, {"filter", s.filter}};
    put_options(j, s.options);
    subs.push_back(std::move(j));
  }
  return ok({{"total", page.total},
             {"offset", paging.offset},
             {"limit", paging.limit},
             {"subscriptions", std::move(subs)}});
}

Response list_retained(broker::Broker& broker, const QueryParams& query) {
  Paging paging;
  if (auto error = read_paging(query, paging, {"filter"})) return *error;
  const std::string* filter = find_param(query, "filter");
  if (filter && (!mqtt::valid_topic_filter(*filter) || filter->starts_with("$share/"))) {
    return json_error(400, "bad_filter", "filter must be a topic filter (wildcards allowed)");
  }
  const auto now = core::EventLoop::now();
  broker::RetainedPage page =
      broker.retained(filter ? *filter : std::string(), paging.offset, paging.limit, now);
  json messages = json::array();
  for (const auto& m : page.messages) {
    json j = {{"topic", m->topic}, {"qos", m->qos}, {"payload_size", m->payload.size()}};
    put_payload(j, m->payload);
    if (m->has_expiry) j["message_expiry_interval"] = m->remaining_expiry(now);
    if (const auto* p = m->properties.get()) {
      json props = json::object();
      if (p->payload_format_indicator)
        props["payload_format_indicator"] = *p->payload_format_indicator;
      if (p->content_type) props["content_type"] = *p->content_type;
      if (p->response_topic) props["response_topic"] = *p->response_topic;
      if (p->correlation_data) {
        // Binary correlation data (from MQTT clients) is shown in base64, and said so.
        if (mqtt::valid_utf8(*p->correlation_data)) {
          props["correlation_data"] = *p->correlation_data;
        } else {
          props["correlation_data"] = core::base64_encode(*p->correlation_data);
          props["correlation_data_encoding"] = "base64";
        }
      }
      if (!p->user_properties.empty()) {
        json users = json::array();
        for (const auto& [k, v] : p->user_properties)
          users.push_back({k, v});
        props["user_properties"] = std::move(users);
      }
      j["properties"] = std::move(props);
    }
    messages.push_back(std::move(j));
  }
  return ok({{"total", page.total},
             {"offset", paging.offset},
             {"limit", paging.limit},
             {"retained", std::move(messages)}});
}

Response stats(broker::Broker& broker, size_t http_connections) {
  using metrics::Counter;
  using metrics::total;
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(broker::Clock::now() - broker.started_at());
  broker::QueueTotals q = broker.queue_totals();
  json dropped = json::object();
  for (const metrics::DropReason& r : metrics::kDropReasons)
    dropped[r.label] = total(r.counter);
  json body = {
      {"version", STARLING_VERSION},
      {"uptime_seconds", uptime.count()},
      {"clients_connected", broker.connected_clients()},
      {"sessions", broker.session_count()},
      {"subscriptions", broker.subscription_count()},
      {"retained_messages", broker.retained_count()},
      {"queued_messages", q.queued},
      {"inflight_messages", q.inflight},
      {"messages",
       {{"received", total(Counter::MessagesReceived)},
        {"sent", total(Counter::MessagesSent)},
        {"routed", total(Counter::MessagesRouted)},
        {"no_subscriber", total(Counter::MessagesNoSubscriber)},
        {"queued", total(Counter::MessagesQueued)},
        {"published_over_http", total(Counter::HttpPublishes)},
        {"dropped", dropped}}},
      {"bytes", {{"received", total(Counter::BytesReceived)}, {"sent", total(Counter::BytesSent)}}},
      {"connections",
       {{"accepted", total(Counter::ConnectionsAccepted)},
        {"refused", total(Counter::ConnectionsRefused)}}},
      {"http",
       {{"connections", http_connections},
        {"requests", total(Counter::HttpRequests)},
        {"connections_accepted", total(Counter::HttpConnectionsAccepted)},
        {"connections_refused", total(Counter::HttpConnectionsRefused)}}},
  };
  return ok(body);
}

Response show_bridges(broker::Broker& broker, const std::string& name) {
  json bridges = json::array();
  const broker::MqttBridges* all = broker.mqtt_bridges();
  for (const broker::MqttBridgeInfo& b :
       all ? all->list() : std::vector<broker::MqttBridgeInfo>{}) {
    if (!name.empty() && b.name != name) continue;
    json failures = json::object();
    for (const auto& [reason, count] : b.failures_by_reason)
      failures[reason] = count;
    json one = {{"name", b.name},
                {"state", b.state},
                {"remote", b.remote},
                {"protocol", b.protocol},
                {"tls", b.tls},
                {"connected_since_ms", b.connected_since_ms},
                {"queued", b.queued},
                {"inflight", b.inflight},
                {"sent", b.sent},
                {"received", b.received},
                {"connects", b.connects},
                {"connect_failures", b.connect_failures},
                {"failures_by_reason", failures},
                {"unmatched", b.unmatched},
                {"last_error", b.last_error}};
    if (!name.empty()) return json_response(200, one.dump());
    bridges.push_back(std::move(one));
  }
  if (!name.empty()) return json_error(404, "not_found", "no bridge with this name");
  return json_response(200, json{{"bridges", bridges}}.dump());
}

Response show_cluster(broker::Broker& broker) {
  const broker::ClusterLink* cluster = broker.cluster();
  if (cluster == nullptr) return json_error(404, "not_found", "this broker is not in a cluster");
  const broker::ClusterView v = cluster->view();
  json nodes = json::array();
  for (const broker::ClusterNodeView& n : v.nodes) {
    nodes.push_back({{"id", n.id},
                     {"state", n.state},
                     {"self", n.self},
                     {"epoch", n.epoch},
                     {"http", n.http},
                     {"last_seen_ms", n.last_seen_ms},
                     {"routes", n.routes},
                     {"forwards", n.forwards}});
  }
  json body = {{"name", v.name},     {"node_id", v.node_id},     {"ready", v.ready},
               {"detail", v.detail}, {"inbox_lag", v.inbox_lag}, {"nodes", nodes}};
  return json_response(200, body.dump());
}

Response retire_node(broker::Broker& broker, const std::string& node_id) {
  broker::ClusterLink* cluster = broker.cluster();
  if (cluster == nullptr) return json_error(404, "not_found", "this broker is not in a cluster");
  using Result = broker::RetireOutcome::Result;
  const broker::RetireOutcome out = cluster->retire(node_id);
  switch (out.result) {
    case Result::Unknown:
      return json_error(404, "not_found", "no node with this id");
    case Result::Self:
      return json_error(409, "conflict",
                        "a node cannot retire itself: stop it, then retire it "
                        "from another node");
    case Result::Up:
      return json_error(409, "conflict", "the node is up: stop it first");
    case Result::Retired:
      break;
  }
  return ok({{"node", node_id}, {"retired", true}, {"routes_removed", out.routes}});
}

Response list_routes(broker::Broker& broker, const QueryParams& query) {
  const broker::ClusterLink* cluster = broker.cluster();
  if (cluster == nullptr) return json_error(404, "not_found", "this broker is not in a cluster");
  Paging paging;
  if (auto error = read_paging(query, paging, {"node"})) return *error;
  const std::string* node = find_param(query, "node");
  if (node == nullptr) return json_error(400, "bad_request", "node=ID is required");
  const broker::RoutePage page = cluster->routes(*node, paging.offset, paging.limit);
  if (!page.known) return json_error(404, "not_found", "no node with this id");
  return ok({{"node", *node},
             {"total", page.total},
             {"offset", paging.offset},
             {"limit", paging.limit},
             {"routes", page.filters}});
}

}  // namespace starling::http
