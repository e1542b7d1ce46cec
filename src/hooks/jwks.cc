#include "hooks/jwks.h"

#include <spdlog/spdlog.h>

#include "auth/jwt.h"
#include "metrics/counters.h"

namespace starling::hooks {

namespace {
// After a failed fetch: again soon, but not hammering the issuer.
constexpr std::chrono::seconds kRetryAfterFailure{5};
}  // namespace

JwksRefresher::JwksRefresher(const config::JwtSettings& settings, broker::AccessControl& access,
                             std::chrono::milliseconds wait_first)
    : settings_(settings),
      access_(access),
      client_(http_client::ClientOptions{
          .thread_name = "starling-jwks", .max_connections = 1, .max_pending = 4, .ca_file = {}}) {
  refetch_limit_.allow();  // the first fetch counts as one
  access_.set_unknown_key_handler([this] { refetch_soon(); });
  fetch();
  std::unique_lock lock(mutex_);
  if (!first_.wait_for(lock, wait_first, [this] { return first_done_; })) {
    spdlog::warn("[auth.jwt] {}: no JWKS yet after {} ms; tokens wait for it", settings_.jwks_url,
                 wait_first.count());
  }
}

JwksRefresher::~JwksRefresher() {
  access_.set_unknown_key_handler(nullptr);
}

void JwksRefresher::refetch_soon() {
  if (refetch_limit_.allow()) client_.after(std::chrono::milliseconds(0), [this] { fetch(); });
}

void JwksRefresher::schedule(std::chrono::milliseconds delay) {
  const uint64_t id = ++chain_;
  client_.after(delay, [this, id] {
    if (id == chain_.load()) fetch();
  });
}

void JwksRefresher::fetch() {
  http_client::Request r;
  r.url = settings_.jwks_url;
  r.get = true;
  r.timeout_ms = 10000;
  client_.submit(std::move(r), [this](http_client::Response&& response) {
    std::string error = response.error;
    if (error.empty() && response.status != 200) {
      error = "HTTP status " + std::to_string(response.status);
    }
    if (error == "stopped") return;
    std::optional<auth::JwtKeySet> keys;
    if (error.empty()) keys = auth::JwtKeySet::from_jwks(response.body, error);
    if (keys) {
      metrics::add(metrics::Counter::JwksRefreshed);
      spdlog::debug("[auth.jwt] {}: {} keys", settings_.jwks_url, keys->size());
      access_.set_jwks_keys(*keys);
      schedule(std::chrono::seconds(settings_.jwks_refresh_s));
    } else {
      metrics::add(metrics::Counter::JwksRefreshFailures);
      spdlog::warn("[auth.jwt] {}: JWKS not fetched ({}); keeping the keys in hand",
                   settings_.jwks_url, error);
      schedule(std::min<std::chrono::milliseconds>(kRetryAfterFailure,
                                                   std::chrono::seconds(settings_.jwks_refresh_s)));
    }
    std::lock_guard lock(mutex_);
    first_done_ = true;
    first_.notify_all();
  });
}

}  // namespace starling::hooks
