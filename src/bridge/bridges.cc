#include "bridge/bridges.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

namespace starling::bridge {

namespace {

// Runs f on loop and waits for it (bounded: a loop that is gone does not hang the caller).
template <typename F>
void run_on(core::EventLoop& loop, F f) {
  if (loop.in_loop_thread()) {
    f();
    return;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  loop.post([done, f = std::move(f)]() mutable {
    f();
    done->set_value();
  });
  future.wait_for(std::chrono::seconds(5));
}

void escape_label(std::string& out, const std::string& value) {
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c == '\n' ? ' ' : c);
  }
}

}  // namespace

Bridges::Bridges(broker::Broker& broker, net::Server& server) : broker_(broker), server_(server) {}

Bridges::~Bridges() {
  stop();
}

void Bridges::check(const config::Config& config) {
  for (const config::BridgeSettings& b : config.bridges) {
    if (!b.tls) continue;
    try {
      net::TlsClientSettings tls;
      tls.ca_file = b.tls_ca;
      tls.cert_file = b.tls_cert;
      tls.key_file = b.tls_key;
      tls.verify = b.tls_verify;
      net::TlsContext::create_client(tls);
    } catch (const std::exception& e) {
      throw config::ConfigError(config.source.empty() ? "command line" : config.source,
                                b.line.value, "bridges " + b.name + ": " + e.what());
    }
  }
}

void Bridges::start_one(const config::BridgeSettings& settings) {
  net::Worker& worker = server_.worker(next_worker_++ % server_.worker_count());
  auto link = std::make_unique<BridgeLink>(settings, broker_, worker, server_.new_token());
  BridgeLink* raw = link.get();
  run_on(worker.loop(), [raw] { raw->start(); });
  spdlog::info("bridge {}: started ({} rule(s), {} address(es))", settings.name,
               settings.topics.size(), settings.addresses.size());
  std::lock_guard lock(mutex_);
  links_.push_back(std::move(link));
}

void Bridges::stop_one(std::unique_ptr<BridgeLink> link) {
  BridgeLink* raw = link.get();
  core::EventLoop& loop = *raw->attachment().loop;
  run_on(loop, [raw] { raw->stop(); });
  // Destroyed on its loop, after whatever that loop still had queued for it.
  auto doomed = std::make_shared<std::unique_ptr<BridgeLink>>(std::move(link));
  run_on(loop, [doomed] { doomed->reset(); });
}

void Bridges::start(const std::vector<config::BridgeSettings>& bridges) {
  broker_.set_mqtt_bridges(this);
  for (const config::BridgeSettings& b : bridges)
    start_one(b);
}

void Bridges::reload(const std::vector<config::BridgeSettings>& bridges) {
  std::vector<std::unique_ptr<BridgeLink>> going;
  std::vector<const config::BridgeSettings*> coming;
  {
    std::lock_guard lock(mutex_);
    for (auto it = links_.begin(); it != links_.end();) {
      const auto same = std::find(bridges.begin(), bridges.end(), (*it)->settings());
      if (same == bridges.end()) {
        going.push_back(std::move(*it));
        it = links_.erase(it);
      } else {
        ++it;
      }
    }
    for (const config::BridgeSettings& b : bridges) {
      const bool running = std::any_of(links_.begin(), links_.end(),
                                       [&](const auto& l) { return l->settings() == b; });
      if (!running) coming.push_back(&b);
    }
  }
  for (auto& link : going) {
    spdlog::info("SIGHUP: bridge {} stopped (removed or changed)", link->settings().name);
    stop_one(std::move(link));
  }
  for (const config::BridgeSettings* b : coming)
    start_one(*b);
}

void Bridges::stop() {
  broker_.set_mqtt_bridges(nullptr);
  std::vector<std::unique_ptr<BridgeLink>> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(links_);
  }
  for (auto& link : all)
    stop_one(std::move(link));
}

std::vector<broker::MqttBridgeInfo> Bridges::list() const {
  std::lock_guard lock(mutex_);
  std::vector<broker::MqttBridgeInfo> out;
  for (const auto& link : links_)
    out.push_back(link->info());
  return out;
}

broker::BridgeStatus Bridges::status() const {
  broker::BridgeStatus st;
  for (const broker::MqttBridgeInfo& i : list()) {
    if (!st.detail.empty()) st.detail += ", ";
    st.detail += i.name + ": " + i.state;
  }
  return st;  // ready: a remote that is away is reported, not a reason to take this one out
}

void Bridges::render_metrics(std::string& out) const {
  const std::vector<broker::MqttBridgeInfo> all = list();
  if (all.empty()) return;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (const broker::MqttBridgeInfo& i : all) {
      out += name;
      out += "{bridge=\"";
      escape_label(out, i.name);
      out += "\"} " + std::to_string(value(i)) + "\n";
    }
  };
  using I = broker::MqttBridgeInfo;
  family("starling_bridge_connected", "gauge", "1 while the bridge is connected to its remote",
         [](const I& i) { return i.state == "connected" ? 1 : 0; });
  family("starling_bridge_queued_messages", "gauge",
         "Outgoing messages waiting for the remote (memory and store)",
         [](const I& i) { return i.queued; });
  family("starling_bridge_inflight_messages", "gauge",
         "Outgoing QoS 1/2 messages sent and not acknowledged yet",
         [](const I& i) { return i.inflight; });
  family("starling_bridge_messages_sent_total", "counter", "Messages sent to the remote",
         [](const I& i) { return i.sent; });
  family("starling_bridge_messages_received_total", "counter", "Messages received from the remote",
         [](const I& i) { return i.received; });
  family("starling_bridge_connects_total", "counter", "Connections to the remote that came up",
         [](const I& i) { return i.connects; });
  family("starling_bridge_unmatched_total", "counter",
         "Messages no topic rule matched (of a removed rule): acknowledged and dropped",
         [](const I& i) { return i.unmatched; });
  out +=
      "# HELP starling_bridge_connect_failures_total Connection attempts that failed, by reason\n"
      "# TYPE starling_bridge_connect_failures_total counter\n";
  for (const broker::MqttBridgeInfo& i : all) {
    for (const auto& [reason, count] : i.failures_by_reason) {
      out += "starling_bridge_connect_failures_total{bridge=\"";
      escape_label(out, i.name);
      out += "\",reason=\"" + reason + "\"} " + std::to_string(count) + "\n";
    }
  }
}

}  // namespace starling::bridge
