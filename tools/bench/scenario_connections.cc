#include "scenario_connections.h"

#include <unistd.h>

#include <string>

namespace starling::bench {

// One loop's share of the connections. Idle until the drain phase, when it pings them all.
class ConnectionsScenario::Worker : public LoopHandler {
 public:
  explicit Worker(ClientLoop& loop) : loop_(loop) {}

  void add(ClientSpec spec) { clients_.push_back(&loop_.add_client(std::move(spec))); }

  void on_message(Client&, const mqtt::Publish&, uint64_t) override {
    ++loop_.stats().misrouted;  // nobody publishes in this scenario
  }

  void on_pingresp(Client&, uint64_t sent_ns, uint64_t now) override {
    loop_.stats().latency.record(now > sent_ns ? now - sent_ns : 0);
    ++answered_;
  }

  uint64_t on_tick(uint64_t, Phase phase) override {
    if (phase == Phase::Drain && !pinged_) {
      pinged_ = true;
      for (Client* c : clients_) {
        if (!c->ready()) continue;
        loop_.ping(*c);
        ++pings_;
      }
    }
    return UINT64_MAX;
  }

  bool drained() const override { return pinged_ && answered_ == pings_; }
  void finish(ThreadStats&) override {}

  uint64_t pings() const { return pings_; }
  uint64_t answered() const { return answered_; }

 private:
  ClientLoop& loop_;
  std::vector<Client*> clients_;
  bool pinged_ = false;
  uint64_t pings_ = 0;
  uint64_t answered_ = 0;
};

ConnectionsScenario::ConnectionsScenario(const CommonOptions& common,
                                         const ConnectionsOptions& opts)
    : common_(common), opts_(opts) {}

ConnectionsScenario::~ConnectionsScenario() = default;

void ConnectionsScenario::setup(const std::vector<ClientLoop*>& loops, RunControl&) {
  const std::string prefix = common_.client_id_prefix.empty()
                                 ? "sbench-" + std::to_string(::getpid())
                                 : common_.client_id_prefix;
  for (ClientLoop* loop : loops) {
    workers_.push_back(std::make_unique<Worker>(*loop));
    loop->set_handler(workers_.back().get());
  }
  for (uint32_t i = 0; i < opts_.connections; ++i) {
    ClientSpec spec;
    spec.client_id = prefix + "-conn-" + std::to_string(i);
    if (opts_.subscribe) {
      mqtt::SubscriptionRequest req;
      req.filter = common_.topic_prefix + "/conn/" + std::to_string(i);
      req.qos = common_.sub_qos;
      spec.subscriptions.push_back(req);
    }
    workers_[i % workers_.size()]->add(std::move(spec));
  }
}

void ConnectionsScenario::summarize(Report& report) const {
  uint64_t pings = 0, answered = 0;
  for (const auto& w : workers_) {
    pings += w->pings();
    answered += w->answered();
  }
  report.results.push_back(
      {"held", static_cast<double>(answered), "", "connections answering PINGREQ after the hold"});
  if (answered < opts_.connections) {
    report.warnings.push_back(std::to_string(opts_.connections - answered) + " of " +
                              std::to_string(opts_.connections) +
                              " connections did not answer the final PINGREQ");
  }
  (void)pings;
}

void ConnectionsScenario::describe(Report& report) const {
  report.params.emplace_back("connections", static_cast<int64_t>(opts_.connections));
  report.params.emplace_back("subscribe", opts_.subscribe ? 1 : 0);
  report.latency_label = "PINGREQ round trip at the end, all connections at once";
  report.schedule = "connections held idle through the window, then pinged";
  report.memory_per_connection = true;
}

}  // namespace starling::bench
