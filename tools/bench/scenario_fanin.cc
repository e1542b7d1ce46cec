#include "scenario_fanin.h"

#include <algorithm>
#include <string>

namespace starling::bench {

Topology FaninScenario::topology(unsigned loops) const {
  Topology t;
  const std::string base = common().topic_prefix + "/fanin";
  // The subscriber gets the last loop to itself when there are enough loops for that; the
  // publishers take the others.
  const unsigned pub_loops = loops > 1 ? loops - 1 : 1;
  for (uint32_t p = 0; p < publishers_; ++p) {
    t.publishers.push_back({base + "/" + std::to_string(p), p % pub_loops});
  }
  t.receivers.push_back({0, publishers_, false});
  t.subscribers.push_back({base + "/+", 0, loops - 1});
  return t;
}

uint32_t FaninScenario::window() const {
  if (total_window_ == 0) return common().window;
  return std::max<uint32_t>(1, total_window_ / std::max<uint32_t>(1, publishers_));
}

void FaninScenario::describe_params(Report& report) const {
  report.params.emplace_back("publishers", static_cast<int64_t>(publishers_));
  if (total_window_ > 0) report.params.emplace_back("total_window", total_window_);
}

}  // namespace starling::bench
