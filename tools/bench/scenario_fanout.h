// Scenario "fanout": P publishers, S subscribers that each receive every message. By default
// everyone uses one topic (PREFIX/fanout); with --wildcard publisher p uses PREFIX/fanout/p and
// subscribers subscribe to PREFIX/fanout/+, which exercises the broker's wildcard matching.
// Publishers and subscribers are spread over the loop threads independently, so deliveries are
// credited across threads (see traffic.h).
#pragma once

#include <cstdint>

#include "traffic.h"

namespace starling::bench {

struct FanoutOptions {
  uint32_t publishers = 1;
  uint32_t subscribers = 10;
  bool wildcard = false;
};

class FanoutScenario : public TrafficScenario {
 public:
  FanoutScenario(const CommonOptions& common, const FanoutOptions& fanout)
      : TrafficScenario(common), fanout_(fanout) {}

  const char* name() const override { return "fanout"; }
  unsigned max_threads() const override { return fanout_.publishers + fanout_.subscribers; }

 protected:
  Topology topology(unsigned loops) const override;
  void describe_params(Report& report) const override;

 private:
  FanoutOptions fanout_;
};

}  // namespace starling::bench
