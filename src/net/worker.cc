#include "net/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include "metrics/counters.h"
#include "net/connection.h"

namespace starling::net {

Worker::Worker(unsigned index, broker::Broker& broker, Admission& admission)
    : broker_(broker), admission_(admission), loop_(index) {
  loop_.set_wake_handler([this](uint64_t token) {
    if (Connection* c = find(token)) {
      c->flush();
    } else if (LoopEndpoint* e = find_endpoint(token)) {
      e->flush();
    }
  });
  loop_.every(std::chrono::milliseconds(500), [this] { tick(); });
}

Worker::~Worker() {
  join();
}

void Worker::start_thread() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), ("starling-w" + std::to_string(loop_.index())).c_str());
    loop_.run();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::adopt(int fd, std::string peer, std::shared_ptr<ListenerContext> listener,
                   LayerStack pre_layers, std::string greeting) {
  Connection* raw = connections_.add([&](uint64_t token) {
    return std::make_unique<Connection>(*this, fd, token, std::move(peer), std::move(listener));
  });
  raw->start(std::move(pre_layers), std::move(greeting));
  metrics::add(metrics::Counter::ConnectionsAccepted);
}

Connection* Worker::find(uint64_t token) {
  return connections_.find(token);
}

LoopEndpoint* Worker::find_endpoint(uint64_t token) {
  auto it = endpoints_.find(token);
  return it == endpoints_.end() ? nullptr : it->second;
}

void Worker::remove(uint64_t token) {
  // Not now: the connection may be on the call stack. The table keeps it alive until then.
  loop_.defer([this, token] { connections_.erase(token); });
}

void Worker::disconnect_all(uint8_t reason_code) {
  for (Connection* c : connections_.all())
    c->client().disconnect(reason_code, "server shutting down");
}

void Worker::tick() {
  auto now = broker::Clock::now();
  for (Connection* c : connections_.all())
    c->tick(now);
}

}  // namespace starling::net
