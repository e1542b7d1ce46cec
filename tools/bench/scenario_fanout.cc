#include "scenario_fanout.h"

#include <string>

namespace starling::bench {

Topology FanoutScenario::topology(unsigned loops) const {
  Topology t;
  const std::string base = common().topic_prefix + "/fanout";
  for (uint32_t p = 0; p < fanout_.publishers; ++p) {
    t.publishers.push_back({fanout_.wildcard ? base + "/" + std::to_string(p) : base, p % loops});
  }
  const std::string filter = fanout_.wildcard ? base + "/+" : base;
  for (uint32_t s = 0; s < fanout_.subscribers; ++s) {
    t.receivers.push_back({0, fanout_.publishers, false});
    // Subscribers start on the last loop so that with few clients publishers and subscribers
    // do not all share the first thread.
    t.subscribers.push_back({filter, s, (loops - 1 + s) % loops});
  }
  return t;
}

void FanoutScenario::describe_params(Report& report) const {
  report.params.emplace_back("publishers", static_cast<int64_t>(fanout_.publishers));
  report.params.emplace_back("subscribers", static_cast<int64_t>(fanout_.subscribers));
  report.params.emplace_back("wildcard", fanout_.wildcard ? 1 : 0);
}

}  // namespace starling::bench
