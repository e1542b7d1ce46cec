#include "hooks/http_auth.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "auth/crypto.h"
#include "metrics/counters.h"

namespace starling::hooks {

namespace {

using broker::ConnectAnswer;
using broker::Decision;
using metrics::Counter;
using json = nlohmann::json;

// "allow", "deny", "ignore" (EMQX's results); anything else is not an answer.
std::optional<Decision> result_of(const json& body) {
  if (!body.is_object()) return std::nullopt;
  auto it = body.find("result");
  if (it == body.end() || !it->is_string()) return std::nullopt;
  const std::string& r = it->get_ref<const std::string&>();
  if (r == "allow") return Decision::Allow;
  if (r == "deny") return Decision::Deny;
  if (r == "ignore") return Decision::Ignore;
  return std::nullopt;
}

void count_connect(Decision d) {
  switch (d) {
    case Decision::Allow:
      return metrics::add(Counter::HttpAuthConnectAllow);
    case Decision::Deny:
      return metrics::add(Counter::HttpAuthConnectDeny);
    case Decision::Ignore:
      return metrics::add(Counter::HttpAuthConnectIgnore);
    case Decision::Failed:
      return metrics::add(Counter::HttpAuthConnectFailed);
  }
}

void count_acl(Decision d) {
  switch (d) {
    case Decision::Allow:
      return metrics::add(Counter::HttpAuthAclAllow);
    case Decision::Deny:
      return metrics::add(Counter::HttpAuthAclDeny);
    case Decision::Ignore:
      return metrics::add(Counter::HttpAuthAclIgnore);
    case Decision::Failed:
      return metrics::add(Counter::HttpAuthAclFailed);
  }
}

std::string optional_text(const std::optional<std::string>& s) {
  return s ? *s : std::string();
}

// Why a response is no answer, or "" when it is one.
std::string transport_problem(const http_client::Response& r) {
  if (!r.answered()) return r.error;
  if (r.status != 200 && r.status != 204) return "HTTP status " + std::to_string(r.status);
  return {};
}

}  // namespace

HttpAuth::HttpAuth(const config::HttpAuthSettings& settings)
    : settings_(settings),
      connect_cache_(std::chrono::seconds(settings.cache_ttl_s), settings.cache_max_entries),
      acl_cache_(std::chrono::seconds(settings.cache_ttl_s), settings.cache_max_entries),
      client_(http_client::ClientOptions{.thread_name = "starling-auth",
                                         .max_connections = settings.pool_size,
                                         .max_pending = settings.max_pending,
                                         .ca_file = settings.ca_file}) {}

http_client::Request HttpAuth::request(const std::string& url, std::string body) const {
  http_client::Request r;
  r.url = url;
  r.body = std::move(body);
  r.headers = settings_.headers;
  r.timeout_ms = settings_.timeout_ms;
  return r;
}

void HttpAuth::log_failure(const char* question, const std::string& why) {
  if (!failure_log_.allow()) return;
  const uint64_t more = failure_log_.take_denied();
  spdlog::warn("auth service ({}): no usable answer: {} (on_error = {}){}", question, why,
               settings_.on_error,
               more > 0 ? fmt::format("; {} more since the last line", more) : std::string());
}

ConnectAnswer HttpAuth::parse_connect_answer(long status, const std::string& body,
                                             const broker::ConnectQuery& query) {
  ConnectAnswer a;
  if (status == 204) {
    a.decision = Decision::Allow;
    return a;
  }
  const json answer = json::parse(body, nullptr, false);
  std::optional<Decision> result = result_of(answer);
  if (!result) {
    a.decision = Decision::Failed;
    a.reason = "the answer is not {\"result\": \"allow\" | \"deny\" | \"ignore\"}";
    return a;
  }
  a.decision = *result;
  if (a.decision != Decision::Allow) return a;
  if (auto it = answer.find("is_superuser"); it != answer.end()) {
    a.superuser = it->is_boolean() ? it->get<bool>() : (it->is_string() && *it == "true");
  }
  if (auto it = answer.find("acl"); it != answer.end() && !it->is_null()) {
    std::string error;
    std::optional<std::string_view> user;
    if (query.username) user = *query.username;
    auto rules = auth::ClientRules::from_json(*it, query.client_id, user, error);
    if (!rules) {
      a.decision = Decision::Failed;
      a.reason = "the answer's acl: " + error;
      return a;
    }
    a.rules = std::make_shared<const auth::ClientRules>(std::move(*rules));
  }
  return a;
}

Decision HttpAuth::parse_acl_answer(long status, const std::string& body, std::string& why) {
  if (status == 204) return Decision::Allow;
  std::optional<Decision> result = result_of(json::parse(body, nullptr, false));
  if (!result) {
    why = "the answer is not {\"result\": \"allow\" | \"deny\" | \"ignore\"}";
    return Decision::Failed;
  }
  return *result;
}

std::optional<ConnectAnswer> HttpAuth::connect(const broker::ConnectQuery& q,
                                               std::function<void(ConnectAnswer)> done) {
  const json body = {
      {"clientid", q.client_id},
      {"username", optional_text(q.username)},
      {"password", optional_text(q.password)},
      {"peerhost", q.peerhost},
      {"proto_ver", q.proto_ver},
      {"protocol", "mqtt"},
      {"cert_common_name", optional_text(q.cert_common_name)},
      {"listener", q.listener},
  };
  // error_handler::replace: a user name or password that is not UTF-8 still makes valid JSON.
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  // The key is a hash: the cache holds no passwords.
  std::string key = auth::sha256(text);
  if (std::optional<ConnectAnswer> cached = connect_cache_.find(key)) {
    metrics::add(Counter::HttpAuthConnectCached);
    return cached;
  }
  const bool taken = client_.submit(
      request(settings_.connect_url, std::move(text)),
      [this, key = std::move(key), q, done = std::move(done)](http_client::Response&& r) {
        ConnectAnswer a;
        if (std::string problem = transport_problem(r); !problem.empty()) {
          a.decision = Decision::Failed;
          a.reason = std::move(problem);
          if (r.timed_out) metrics::add(Counter::HttpAuthTimeouts);
        } else {
          a = parse_connect_answer(r.status, r.body, q);
        }
        count_connect(a.decision);
        if (a.decision == Decision::Failed) {
          log_failure("connect", a.reason);
        } else {
          connect_cache_.put(key, a);
        }
        done(std::move(a));
      });
  if (taken) return std::nullopt;
  ConnectAnswer a;
  a.decision = Decision::Failed;
  a.reason = "max_pending requests already wait";
  count_connect(a.decision);
  log_failure("connect", a.reason);
  return a;
}

std::optional<Decision> HttpAuth::acl(const broker::AclQuery& q,
                                      std::function<void(Decision)> done) {
  const bool publish = q.action == broker::AclAction::Publish;
  const json body = {
      {"clientid", q.client_id}, {"username", optional_text(q.username)},
      {"peerhost", q.peerhost},  {"action", publish ? "publish" : "subscribe"},
      {"topic", q.topic},        {"qos", q.qos},
      {"retain", q.retain},
  };
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string key = text;
  if (std::optional<Decision> cached = acl_cache_.find(key)) {
    metrics::add(Counter::HttpAuthAclCached);
    return cached;
  }
  const bool taken = client_.submit(
      request(settings_.acl_url, std::move(text)),
      [this, key = std::move(key), done = std::move(done)](http_client::Response&& r) {
        std::string why = transport_problem(r);
        Decision d = Decision::Failed;
        if (why.empty()) {
          d = parse_acl_answer(r.status, r.body, why);
        } else if (r.timed_out) {
          metrics::add(Counter::HttpAuthTimeouts);
        }
        count_acl(d);
        if (d == Decision::Failed) {
          log_failure("acl", why);
        } else {
          acl_cache_.put(key, d);
        }
        done(d);
      });
  if (taken) return std::nullopt;
  count_acl(Decision::Failed);
  log_failure("acl", "max_pending requests already wait");
  return Decision::Failed;
}

}  // namespace starling::hooks
