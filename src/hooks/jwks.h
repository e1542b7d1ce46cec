// [auth.jwt] jwks_url: the issuer's public keys (RFC 7517), fetched at start and every
// jwks_refresh_s, and sooner when a token names a key id we do not have (a rotation), at most
// once every 5 seconds. A failed fetch keeps the keys in hand (counted, logged).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "broker/access_control.h"
#include "config/auth_settings.h"
#include "core/rate_limit.h"
#include "http/client/async_client.h"

namespace starling::hooks {

class JwksRefresher {
 public:
  // Starts fetching and waits up to wait_first for the first document, so that tokens are
  // taken from the first CONNECT. Throws std::runtime_error when libcurl cannot be loaded.
  JwksRefresher(const config::JwtSettings& settings, broker::AccessControl& access,
                std::chrono::milliseconds wait_first = std::chrono::seconds(5));
  ~JwksRefresher();

 private:
  void fetch();
  void schedule(std::chrono::milliseconds delay);
  // A token with a key id we lack: fetch now, at most once every 5 s.
  void refetch_soon();

  const config::JwtSettings settings_;
  broker::AccessControl& access_;
  std::mutex mutex_;
  bool first_done_ = false;
  std::condition_variable first_;
  core::RateLimit refetch_limit_{std::chrono::seconds(5)};
  // The periodic fetch's timer in force: a fetch schedules the next one and retires older ones
  // (a refetch_soon would otherwise start a second chain).
  std::atomic<uint64_t> chain_{0};
  http_client::AsyncClient client_;  // last: destroyed first
};

}  // namespace starling::hooks
