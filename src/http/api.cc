#include "http/api.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "broker/events.h"
#include "http/auth.h"
#include "http/connection.h"
#include "http/dashboard.h"
#include "http/publish.h"
#include "http/server.h"
#include "http/views.h"
#include "metrics/prometheus.h"
#include "starling/version.h"

namespace starling::http {

namespace {

Response method_not_allowed(const char* allow) {
  Response r = json_error(405, "method_not_allowed", std::string("allowed: ") + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

Response not_found() {
  return json_error(404, "not_found", "no such endpoint");
}

// Splits the path into decoded segments; empty segments (a trailing '/') are dropped.
std::optional<std::vector<std::string>> segments_of(std::string_view path) {
  std::vector<std::string> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    size_t slash = path.find('/');
    auto segment = percent_decode(path.substr(0, slash), false);
    if (!segment) return std::nullopt;
    out.push_back(std::move(*segment));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return out;
}

}  // namespace

void Responder::operator()(Response response) const {
  LoopSite* site = site_;
  uint64_t token = token_;
  uint64_t seq = seq_;
  site->loop->post([site, token, seq, response = std::move(response)]() mutable {
    if (Connection* c = site->find(token)) c->complete(seq, std::move(response));
  });
}

Responder RequestContext::defer() const {
  return Responder(&connection.site(), connection.token(), seq);
}

std::optional<Response> Api::handle(const Request& request, const RequestContext& ctx) {
  auto target = split_target(request.target);
  if (!target) return json_error(400, "bad_request", "the request target must be a path");
  auto segments = segments_of(target->path);
  auto query = parse_query(target->query);
  if (!segments || !query) return json_error(400, "bad_request", "bad percent-encoding in URL");
  const std::vector<std::string>& s = *segments;
  const std::string& method = request.method;
  const bool get = method == "GET" || method == "HEAD";
  const config::HttpSettings& http = ctx.settings.http;
  const bool loopback = ctx.connection.loopback();
  auto guard = [&](Scope scope) { return authorize(request, loopback, http, scope); };

  // Probes answer to anyone: they reveal nothing and orchestrators call them without tokens.
  if (s.size() == 1 && s[0] == "healthz") {
    if (!get) return method_not_allowed("GET, HEAD");
    return json_response(200, R"({"status":"ok"})");
  }
  if (s.size() == 1 && s[0] == "readyz") {
    if (!get) return method_not_allowed("GET, HEAD");
    return readyz();
  }
  if (s.size() == 1 && s[0] == "metrics") {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return metrics();
  }
  // The dashboard's files need no token: they hold no data, and the page asks for one.
  if (get) {
    if (auto file = dashboard_file(target->path)) return file;
  }
  if (s.size() < 3 || s[0] != "api" || s[1] != "v1") return not_found();

  const std::string& what = s[2];
  if (what == "publish" && (s.size() == 3 || (s.size() == 4 && s[3] == "bulk"))) {
    if (method != "POST") return method_not_allowed("POST");
    if (auto denied = guard(Scope::Publish)) return denied;
    if (s.size() == 4) return publish_bulk(server_.broker(), request, ctx);
    return publish_one(server_.broker(), request, *query, ctx);
  }
  if (what == "clients" && s.size() == 3) {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return list_clients(server_.broker(), *query);
  }
  if (what == "clients" && s.size() == 4) {
    if (get) {
      if (auto denied = guard(Scope::Read)) return denied;
      return show_client(server_.broker(), s[3]);
    }
    if (method == "DELETE") {
      if (auto denied = guard(Scope::Admin)) return denied;
      return kick_client(server_.broker(), s[3]);
    }
    return method_not_allowed("GET, HEAD, DELETE");
  }
  if (what == "subscriptions" && s.size() == 3) {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return list_subscriptions(server_.broker(), *query);
  }
  if (what == "retained" && s.size() == 3) {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return list_retained(server_.broker(), *query);
  }
  if (what == "cluster" && s.size() == 4 && s[3] == "routes") {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return list_routes(server_.broker(), *query);
  }
  if (what == "cluster" && s.size() == 5 && s[3] == "nodes") {
    if (method != "DELETE") return method_not_allowed("DELETE");
    if (auto denied = guard(Scope::Admin)) return denied;
    return retire_node(server_.broker(), s[4]);
  }
  if (what == "cluster" && s.size() == 3) {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return show_cluster(server_.broker());
  }
  if (what == "bridges" && (s.size() == 3 || s.size() == 4)) {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return show_bridges(server_.broker(), s.size() == 4 ? s[3] : std::string());
  }
  if (what == "whoami" && s.size() == 3) {
    // Answers without a token too (scopes []): the dashboard asks before it shows anything.
    if (!get) return method_not_allowed("GET, HEAD");
    return whoami(granted_scopes(request, loopback, http));
  }
  if (what == "stats" && s.size() == 3) {
    if (!get) return method_not_allowed("GET, HEAD");
    if (auto denied = guard(Scope::Read)) return denied;
    return stats(server_.broker(), server_.connection_count());
  }
  return not_found();
}

Response Api::whoami(const std::vector<std::string>& scopes) {
  // What the dashboard shows and allows: the caller's scopes and the parts this broker runs.
  broker::Broker& b = server_.broker();
  nlohmann::ordered_json body = {{"scopes", scopes}};
  const bool may_read = std::find(scopes.begin(), scopes.end(), "read") != scopes.end() ||
                        std::find(scopes.begin(), scopes.end(), "admin") != scopes.end();
  if (!may_read) return json_response(200, body.dump());  // what runs here is not shown
  body["features"] = {{"version", STARLING_VERSION},
                      {"kafka", b.bridge() != nullptr},
                      {"cluster", b.cluster() != nullptr},
                      {"bridges", b.mqtt_bridges() != nullptr && !b.settings()->bridges.empty()}};
  return json_response(200, body.dump());
}

Response Api::readyz() {
  // Listeners bound and workers running; the store, when durability asks for one, is open
  // (it is opened before the listeners, and a failed write stops the process); the Kafka
  // bridge, when configured, has a broker it can reach; a cluster node has read the shared
  // state to its end.
  broker::Broker& b = server_.broker();
  const bool wants_store = b.settings()->storage.durability != "none";
  const bool listeners = server_.listeners_up();
  const bool store_ok = !wants_store || b.store() != nullptr;
  nlohmann::ordered_json checks = {
      {"listeners", listeners ? "up" : "down"},
      {"store", wants_store ? (store_ok ? "open" : "closed") : "not configured"},
  };
  bool kafka_ok = true;
  if (const broker::ExternalBridge* bridge = b.bridge()) {
    broker::BridgeStatus st = bridge->status();
    kafka_ok = st.ready;
    checks["kafka"] = st.detail;
  } else {
    checks["kafka"] = "not configured";
  }
  bool cluster_ok = true;
  if (const broker::ClusterLink* cluster = b.cluster()) {
    broker::BridgeStatus st = cluster->status();
    cluster_ok = st.ready;
    checks["cluster"] = st.detail;
  }
  // Bridges are reported, not waited for: a remote that is away does not make this broker
  // less able to serve its own clients (what goes out waits in the bridge's session).
  if (const broker::MqttBridges* bridges = b.mqtt_bridges()) {
    checks["bridges"] = bridges->status().detail;
  }
  const bool ready = listeners && store_ok && kafka_ok && cluster_ok;
  nlohmann::ordered_json body = {{"status", ready ? "ready" : "not ready"}, {"checks", checks}};
  return json_response(ready ? 200 : 503, body.dump());
}

Response Api::metrics() {
  broker::Broker& b = server_.broker();
  metrics::Gauges g;
  g.clients_connected = b.connected_clients();
  g.sessions = b.session_count();
  g.subscriptions = b.subscription_count();
  g.retained_messages = b.retained_count();
  broker::QueueTotals q = b.queue_totals();
  g.queued_messages = q.queued;
  g.inflight_messages = q.inflight;
  g.max_queue_depth = q.max_depth;
  g.http_connections = server_.connection_count();
  g.uptime_seconds = std::chrono::duration<double>(broker::Clock::now() - b.started_at()).count();
  if (store::Store* st = b.store()) {
    g.store_open = true;
    g.store_commits = st->commits();
    g.store_syncs = st->syncs();
  }
  Response r;
  r.content_type = metrics::kPrometheusContentType;
  r.body = metrics::render_prometheus(g, STARLING_VERSION);
  if (const broker::ExternalBridge* bridge = b.bridge()) bridge->render_metrics(r.body);
  if (const broker::ClusterLink* cluster = b.cluster()) cluster->render_metrics(r.body);
  if (const broker::MqttBridges* bridges = b.mqtt_bridges()) bridges->render_metrics(r.body);
  if (const broker::EventSink* webhooks = broker::Events::sink()) webhooks->render_metrics(r.body);
  return r;
}

}  // namespace starling::http
