// Scenario "pairs": N independent publisher/subscriber pairs. Pair i publishes on
// bench/pair/i and only its own subscriber subscribes to that topic, so every message has
// exactly one receiver. Both clients of a pair live on the same loop thread, which keeps the
// flow-control window (sent but not yet received) a plain thread-local counter.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "runner.h"

namespace starling::bench {

struct PairsOptions {
  uint32_t pairs = 10;
};

class PairsScenario : public Scenario {
 public:
  PairsScenario(const CommonOptions& common, const PairsOptions& pairs);
  ~PairsScenario() override;

  const char* name() const override { return "pairs"; }
  unsigned max_threads() const override { return pairs_.pairs; }
  void setup(const std::vector<ClientLoop*>& loops, RunControl& control) override;
  void describe(Report& report) const override;

 private:
  class Worker;
  CommonOptions common_;
  PairsOptions pairs_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace starling::bench
