#include "scenario_pairs.h"

#include <string>

namespace starling::bench {

Topology PairsScenario::topology(unsigned loops) const {
  Topology t;
  for (uint32_t i = 0; i < pairs_.pairs; ++i) {
    const unsigned loop = i % loops;
    const std::string topic = common().topic_prefix + "/pair/" + std::to_string(i);
    t.publishers.push_back({topic, loop});
    t.receivers.push_back({i, 1, false});
    t.subscribers.push_back({topic, i, loop});
  }
  return t;
}

void PairsScenario::describe_params(Report& report) const {
  report.params.emplace_back("pairs", static_cast<int64_t>(pairs_.pairs));
}

}  // namespace starling::bench
