#include "scenario_shared.h"

#include <string>

namespace starling::bench {

Topology SharedScenario::topology(unsigned loops) const {
  Topology t;
  const std::string base = common().topic_prefix + "/shared";
  for (uint32_t p = 0; p < shared_.publishers; ++p) {
    t.publishers.push_back({base + "/" + std::to_string(p), p % loops});
  }
  uint32_t n = 0;
  for (uint32_t g = 0; g < shared_.groups; ++g) {
    t.receivers.push_back({0, shared_.publishers, true});
    const std::string filter = "$share/g" + std::to_string(g) + "/" + base + "/+";
    for (uint32_t m = 0; m < shared_.members; ++m, ++n) {
      // Members of one group on different loops, so a group is not served by one thread.
      t.subscribers.push_back({filter, g, (loops - 1 + n) % loops});
    }
  }
  return t;
}

void SharedScenario::describe_params(Report& report) const {
  report.params.emplace_back("publishers", static_cast<int64_t>(shared_.publishers));
  report.params.emplace_back("groups", static_cast<int64_t>(shared_.groups));
  report.params.emplace_back("members", static_cast<int64_t>(shared_.members));
}

}  // namespace starling::bench
