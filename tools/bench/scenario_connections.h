// Scenario "connections": a connection storm. Opens N clients (paced by --connect-rate and
// --max-connecting), optionally each subscribing to its own topic, holds them idle through the
// window while the broker's RSS is sampled, then pings every one of them (PINGREQ) to prove the
// broker still serves them all. Measures connect-to-CONNACK latency, the connect rate reached,
// the PINGREQ round trip under N idle connections and, with --broker-pid, the broker's memory
// per connection ((RSS at the end of the window - RSS before the first connect) / N).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runner.h"

namespace starling::bench {

struct ConnectionsOptions {
  uint32_t connections = 1000;
  bool subscribe = false;  // each client subscribes to PREFIX/conn/<i> at connect
};

class ConnectionsScenario : public Scenario {
 public:
  ConnectionsScenario(const CommonOptions& common, const ConnectionsOptions& opts);
  ~ConnectionsScenario() override;

  const char* name() const override { return "connections"; }
  unsigned max_threads() const override { return opts_.connections; }
  void setup(const std::vector<ClientLoop*>& loops, RunControl& control) override;
  void describe(Report& report) const override;
  void summarize(Report& report) const override;

 private:
  class Worker;
  CommonOptions common_;
  ConnectionsOptions opts_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace starling::bench
