// Scenario "fanin": P publishers on PREFIX/fanin/p, one subscriber on PREFIX/fanin/+ that
// receives them all. --total-window bounds the messages in flight over all publishers (each
// gets total / P, at least 1), so a sweep over P compares brokers at the same queue depth
// rather than at P times the backlog.
#pragma once

#include <cstdint>
#include <vector>

#include "traffic.h"

namespace starling::bench {

struct FaninOptions {
  // More than one value makes a sweep: one run per publisher count, in order.
  std::vector<uint32_t> publishers{10};
  uint32_t total_window = 0;  // 0: --window per publisher
};

class FaninScenario : public TrafficScenario {
 public:
  FaninScenario(const CommonOptions& common, uint32_t publishers, uint32_t total_window)
      : TrafficScenario(common), publishers_(publishers), total_window_(total_window) {}

  const char* name() const override { return "fanin"; }
  unsigned max_threads() const override { return publishers_ + 1; }

 protected:
  Topology topology(unsigned loops) const override;
  void describe_params(Report& report) const override;
  uint32_t window() const override;

 private:
  uint32_t publishers_;
  uint32_t total_window_;
};

}  // namespace starling::bench
