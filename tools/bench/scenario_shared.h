// Scenario "shared": P publishers on PREFIX/shared/p and G shared-subscription groups of M
// members each ($share/gJ/PREFIX/shared/+). Each group as a whole must receive every message
// exactly once: loss and duplicates are counted per group (the runner merges the members'
// sequence bitmaps), reordering per member.
#pragma once

#include <cstdint>

#include "traffic.h"

namespace starling::bench {

struct SharedOptions {
  uint32_t publishers = 1;
  uint32_t groups = 1;
  uint32_t members = 4;
};

class SharedScenario : public TrafficScenario {
 public:
  SharedScenario(const CommonOptions& common, const SharedOptions& shared)
      : TrafficScenario(common), shared_(shared) {}

  const char* name() const override { return "shared"; }
  unsigned max_threads() const override {
    return shared_.publishers + shared_.groups * shared_.members;
  }

 protected:
  Topology topology(unsigned loops) const override;
  void describe_params(Report& report) const override;

 private:
  SharedOptions shared_;
};

}  // namespace starling::bench
