#include "net/server.h"

#include <malloc.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "http/server.h"
#include "metrics/counters.h"
#include "net/connection.h"
#include "net/listener.h"

namespace starling::net {

namespace {

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
    workers_.push_back(std::make_unique<Worker>(i, broker));
  }
  // Housekeeping (wills, session expiry, $SYS) runs on the first worker.
  workers_[0]->loop().every(std::chrono::milliseconds(1000),
                            [&broker] { broker.tick(broker::Clock::now()); });
  // glibc keeps freed memory in per-thread arenas; after a wave of connections or queued
  // messages has gone, give it back to the system.
  workers_[0]->loop().every(std::chrono::seconds(30), [] { malloc_trim(0); });
  broker::set_connection_control(this);
}

Server::~Server() {
  stop();
  broker::set_connection_control(nullptr);
}

void Server::start() {
  for (const auto& l : config_.listeners) {
    auto listener = std::make_unique<Listener>(l, *this);
    // Listeners on the workers in turn; accepted sockets are spread round robin anyway.
    listener->attach(workers_[listeners_.size() % workers_.size()]->loop());
    listeners_.push_back(std::move(listener));
  }
  if (config_.http_enabled) {
    // The HTTP API: its connections live on the same worker loops as MQTT's.
    std::vector<core::EventLoop*> loops;
    for (auto& w : workers_)
      loops.push_back(&w->loop());
    http_ = std::make_unique<http::Server>(broker_, loops);
    config::Listener l{"http", config_.http, "http"};
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

void Server::dispatch(int fd, std::string peer) {
  const uint32_t max = config_.limits.max_connections;
  if (max != 0 && broker_.connected_clients() >= static_cast<int64_t>(max)) {
    // Over the limit: closed at once; counted as refused.
    metrics::add(metrics::Counter::ConnectionsRefused);
    ::close(fd);
    return;
  }
  uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  Worker& target =
      *workers_[next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
  if (target.loop().in_loop_thread()) {
    target.adopt(fd, token, std::move(peer));
  } else {
    target.loop().post([&target, fd, token, peer = std::move(peer)]() mutable {
      target.adopt(fd, token, std::move(peer));
    });
  }
}

void Server::kick(broker::Attachment connection, uint8_t reason_code) {
  Worker& w = worker_of(connection);
  w.loop().post([&w, token = connection.token, reason_code] {
    if (Connection* c = w.find(token)) {
      const char* why = reason_code == mqtt::reason::AdministrativeAction ? "administrative action"
                                                                          : "session taken over";
      c->client().disconnect(reason_code, why);
    }
  });
}

void Server::resume_reading(broker::Attachment connection) {
  Worker& w = worker_of(connection);
  w.loop().post([&w, token = connection.token] {
    if (Connection* c = w.find(token)) c->pause_reading(false);
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
