// Scenario "retained": a retained storm. During setup one loader client stores R retained
// messages (QoS 1, one topic each: PREFIX/retained/<pid>/<i>). Through warmup and the window,
// S subscribers each repeat a round: SUBSCRIBE to PREFIX/retained/<pid>/+, receive all R
// retained messages, UNSUBSCRIBE. Measures retained messages delivered per second, the round
// time (SUBSCRIBE sent to the last retained message received) and, per round, loss and
// duplicates. The loader deletes its retained messages during the drain, once no round is left.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runner.h"

namespace starling::bench {

struct RetainedOptions {
  uint32_t retained = 1000;
  uint32_t subscribers = 10;
};

class RetainedScenario : public Scenario {
 public:
  RetainedScenario(const CommonOptions& common, const RetainedOptions& opts);
  ~RetainedScenario() override;

  const char* name() const override { return "retained"; }
  unsigned max_threads() const override { return opts_.subscribers + 1; }
  void setup(const std::vector<ClientLoop*>& loops, RunControl& control) override;
  void describe(Report& report) const override;
  void summarize(Report& report) const override;

 private:
  class Worker;
  CommonOptions common_;
  RetainedOptions opts_;
  std::string topic_base_;
  std::atomic<int> active_rounds_{0};  // subscribers between SUBSCRIBE and UNSUBACK
  // Loops with subscribers that may still start a round (they stop once they see the window
  // end; loops read their own clocks). The loader deletes nothing before this is zero.
  std::atomic<int> starting_loops_{0};
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace starling::bench
