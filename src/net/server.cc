#include "net/server.h"

#include <malloc.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "http/response.h"
#include "http/server.h"
#include "metrics/counters.h"
#include "net/connection.h"
#include "net/layers.h"
#include "net/layers/tls.h"
#include "net/layers/websocket.h"
#include "net/listener.h"

namespace starling::net {

namespace {

TlsSettings tls_settings(const config::Listener& l) {
  TlsSettings s;
  s.cert_file = l.tls_cert;
  s.key_file = l.tls_key;
  s.ca_file = l.tls_ca;
  s.require_client_cert = l.require_client_cert;
  s.min_version = l.tls_min_version;
  s.ciphers = l.tls_ciphers;
  s.ciphersuites = l.tls_ciphersuites;
  if (l.username_from_cert) s.username_from_cert = "cn";
  return s;
}

// Runs f on the worker's thread and waits (bounded) for its result.
template <typename F>
auto ask(Worker& worker, F f) -> std::optional<decltype(f())> {
  using Result = decltype(f());
  auto promise = std::make_shared<std::promise<Result>>();
  auto future = promise->get_future();
  worker.loop().post([promise, f = std::move(f)]() mutable { promise->set_value(f()); });
  if (future.wait_for(std::chrono::seconds(2)) != std::future_status::ready) return std::nullopt;
  return future.get();
}

}  // namespace

Server::Server(const config::Config& config, broker::Broker& broker)
    : config_(config), broker_(broker) {
  unsigned threads = config.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, broker, admission_));
  }
  probes_answered_ = std::vector<std::atomic<uint64_t>>(workers_.size());
  // Housekeeping (wills, session expiry, $SYS) runs on the first worker.
  workers_[0]->loop().every(std::chrono::milliseconds(1000),
                            [&broker] { broker.tick(broker::Clock::now()); });
  // glibc keeps freed memory in per-thread arenas; after a wave of connections or queued
  // messages has gone, give it back to the system.
  workers_[0]->loop().every(std::chrono::seconds(30), [] { malloc_trim(0); });
}

Server::~Server() {
  stop();
}

void Server::check_tls(const config::Config& config) {
  for (const auto& l : config.listeners) {
    if (!l.tls()) continue;
    try {
      TlsContext::create(tls_settings(l));
    } catch (const std::exception& e) {
      throw config::ConfigError(config.source.empty() ? "command line" : config.source,
                                l.line.value, "listeners." + l.name + ": " + e.what());
    }
  }
}

void Server::start() {
  for (const auto& l : config_.listeners) {
    auto context = std::make_shared<ListenerContext>();
    context->config = l;
    if (l.tls()) {
      try {
        context->tls = std::make_shared<TlsContextHolder>(TlsContext::create(tls_settings(l)));
      } catch (const std::exception& e) {
        throw std::runtime_error("listener " + l.name + ": " + e.what());
      }
    }
    auto listener = std::make_unique<Listener>(
        l, [this, context](int fd, std::string peer) { dispatch(fd, std::move(peer), context); });
    // Listeners on the workers in turn; accepted sockets are spread round robin anyway.
    listener->attach(workers_[listeners_.size() % workers_.size()]->loop());
    listeners_.push_back(std::move(listener));
    contexts_.push_back(std::move(context));
  }
  if (config_.http.enabled) {
    // The HTTP API: its connections live on the same worker loops as MQTT's.
    std::vector<core::EventLoop*> loops;
    for (auto& w : workers_)
      loops.push_back(&w->loop());
    http_ = std::make_unique<http::Server>(broker_, loops);
    // MQTT over WebSocket on the HTTP port (GET /mqtt with Upgrade: websocket).
    http_ws_context_ = std::make_shared<ListenerContext>();
    http_ws_context_->config = config::Listener{"http", config_.http.bind, "ws"};
    http_->set_websocket_handler(
        [this](int fd, const std::string& peer, const http::Request& request, unsigned loop_index) {
          return take_websocket(fd, peer, request, loop_index);
        });
    config::Listener l{"http", config_.http.bind, "http"};
    auto listener = std::make_unique<Listener>(
        l, [http = http_.get()](int fd, std::string peer) { http->dispatch(fd, std::move(peer)); });
    listener->attach(workers_[listeners_.size() % workers_.size()]->loop());
    listeners_.push_back(std::move(listener));
  }
  for (auto& w : workers_)
    w->start_thread();
  started_ = true;
  if (http_) http_->set_listeners_up(true);
  spdlog::info("{} worker threads", workers_.size());
}

void Server::dispatch(int fd, std::string peer, const std::shared_ptr<ListenerContext>& listener) {
  auto settings = broker_.settings();
  auto verdict =
      admission_.admit_socket(listener->count, listener->config.max_connections, settings->limits);
  if (verdict != Admission::Verdict::Admitted) {
    // Over a limit: closed at once, counted by the limit.
    Admission::count(verdict);
    ::close(fd);
    return;
  }
  Worker& target =
      *workers_[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
  if (target.loop().in_loop_thread()) {
    target.adopt(fd, std::move(peer), listener);
  } else {
    target.loop().post([&target, fd, peer = std::move(peer), listener]() mutable {
      target.adopt(fd, std::move(peer), std::move(listener));
    });
  }
}

http::WebSocketTakeover Server::take_websocket(int fd, const std::string& peer,
                                               const http::Request& request, unsigned loop_index) {
  auto settings = broker_.settings();
  WebSocketSettings ws =
      websocket_settings(http_ws_context_->config, settings->mqtt.max_packet_size);
  WebSocketUpgrade upgrade = answer_upgrade(request, ws);
  if (!upgrade.accepted) {
    metrics::add(metrics::Counter::WebSocketHandshakeFailures);
    return {false, std::move(upgrade.response)};  // the HTTP connection answers it
  }
  auto verdict = admission_.admit_socket(http_ws_context_->count, 0, settings->limits);
  if (verdict != Admission::Verdict::Admitted) {
    Admission::count(verdict);
    std::string refusal;
    http::serialize(http::json_error(503, "server_full", Admission::describe(verdict)), false,
                    false, 1, refusal);
    return {false, std::move(refusal)};
  }
  LayerStack layers;
  layers.add(WebSocketLayer::accepted(ws, upgrade.subprotocol));
  Worker& worker = *workers_[loop_index];
  worker.adopt(fd, peer, http_ws_context_, std::move(layers), std::move(upgrade.response));
  return {true, {}};
}

bool Server::loops_responsive() {
  if (!started_ || stopped_) return true;  // no loops to be stuck
  bool all_answered = true;
  for (const auto& answered : probes_answered_) {
    if (answered.load(std::memory_order_acquire) != probes_posted_) all_answered = false;
  }
  if (!all_answered) return false;  // the probe stays posted: a loop that recovers answers it
  const uint64_t probe = ++probes_posted_;
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->loop().post(
        [this, i, probe] { probes_answered_[i].store(probe, std::memory_order_release); });
  }
  return true;
}

void Server::reload_certificates() {
  for (auto& context : contexts_) {
    if (!context->tls) continue;
    try {
      context->tls->reload(tls_settings(context->config));
      spdlog::info("listener {}: certificates reloaded", context->config.name);
    } catch (const std::exception& e) {
      spdlog::error("listener {}: certificates not reloaded, keeping the current ones: {}",
                    context->config.name, e.what());
    }
  }
}

void Server::kick(broker::Attachment connection, uint8_t reason_code) {
  Worker& w = worker_of(connection);
  w.loop().post([&w, token = connection.token, reason_code] {
    if (Connection* c = w.find(token)) {
      const char* why = reason_code == mqtt::reason::AdministrativeAction ? "administrative action"
                                                                          : "session taken over";
      c->client().disconnect(reason_code, why);
    } else if (LoopEndpoint* e = w.find_endpoint(token); e && e->client()) {
      e->client()->disconnect(reason_code, "session taken over");
    }
  });
}

void Server::resume_reading(broker::Attachment connection) {
  Worker& w = worker_of(connection);
  w.loop().post([&w, token = connection.token] {
    if (Connection* c = w.find(token)) {
      c->pause_reading(false);
    } else if (LoopEndpoint* e = w.find_endpoint(token)) {
      e->pause_reading(false);
    }
  });
}

void Server::cluster_wait_over(broker::Attachment connection) {
  Worker& w = worker_of(connection);
  w.loop().post([&w, token = connection.token] {
    if (Connection* c = w.find(token)) {
      c->client().cluster_wait_over();
    } else if (LoopEndpoint* e = w.find_endpoint(token); e && e->client()) {
      e->client()->cluster_wait_over();
    }
  });
}

void Server::post_to_client(broker::Attachment connection,
                            std::function<void(broker::Client&)> task) {
  Worker& w = worker_of(connection);
  w.loop().post([&w, token = connection.token, task = std::move(task)] {
    if (Connection* c = w.find(token)) {
      task(c->client());
    } else if (LoopEndpoint* e = w.find_endpoint(token); e && e->client()) {
      task(*e->client());
    }
  });
}

void Server::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Say goodbye to every client on its own thread (DISCONNECT 0x8B on 5.0), then wait a
  // bounded time for the workers to flush and close them before ending the threads.
  if (http_) http_->set_listeners_up(false);
  for (auto& w : workers_) {
    ask(*w, [worker = w.get(), http = http_.get()] {
      worker->disconnect_all(mqtt::reason::ServerShuttingDown);
      if (http) http->close_all(worker->loop().index());
      return true;
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (auto& w : workers_) {
    while (std::chrono::steady_clock::now() < deadline) {
      auto count = ask(*w, [worker = w.get()] { return worker->connection_count(); });
      if (count && *count == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  for (auto& w : workers_)
    w->loop().stop();
  for (auto& w : workers_)
    w->join();
  listeners_.clear();
  spdlog::info("stopped");
}

}  // namespace starling::net
