// Scenario "pairs": N independent publisher/subscriber pairs. Pair i publishes on
// PREFIX/pair/i and only its own subscriber subscribes to that topic, so every message has
// exactly one receiver. Both clients of a pair live on the same loop thread, so the window's
// delivery credit never crosses threads.
#pragma once

#include <cstdint>

#include "traffic.h"

namespace starling::bench {

struct PairsOptions {
  uint32_t pairs = 10;
};

class PairsScenario : public TrafficScenario {
 public:
  PairsScenario(const CommonOptions& common, const PairsOptions& pairs)
      : TrafficScenario(common), pairs_(pairs) {}

  const char* name() const override { return "pairs"; }
  unsigned max_threads() const override { return pairs_.pairs; }

 protected:
  Topology topology(unsigned loops) const override;
  void describe_params(Report& report) const override;

 private:
  PairsOptions pairs_;
};

}  // namespace starling::bench
