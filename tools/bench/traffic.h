// The publish/subscribe engine behind the pairs, fan-out, fan-in and shared-group scenarios. A
// scenario only describes a Topology (who publishes where, who subscribes to what, which
// publishers each receiver expects, which loop thread hosts each client); this engine does the
// publishing (rate schedule or in-flight window, --count), the per-stream accounting and the
// cross-thread bookkeeping.
//
// Cross-thread state, one cache line per publisher: `delivered` (distinct messages received,
// summed over its receivers) is added to by every subscriber loop once per loop iteration, not
// per message; the publisher's loop reads it to size its window. A publisher whose window is
// full parks itself with a `wake_at` threshold; the subscriber loop that crosses it posts the
// publisher to its owner's inbox and wakes that loop (eventfd). Nothing is locked per message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runner.h"

namespace starling::bench {

struct Topology {
  struct Publisher {
    std::string topic;
    unsigned loop = 0;
  };
  // Who counts as having received a message: a subscriber, or a shared-subscription group
  // (then the group as a whole must get each message once).
  struct Receiver {
    uint32_t first_publisher = 0;  // it expects every message of publishers
    uint32_t publisher_count = 0;  // [first_publisher, first_publisher + publisher_count)
    bool shared = false;
  };
  struct Subscriber {
    std::string filter;
    uint32_t receiver = 0;
    unsigned loop = 0;
  };
  std::vector<Publisher> publishers;
  std::vector<Receiver> receivers;
  std::vector<Subscriber> subscribers;
};

class TrafficScenario : public Scenario {
 public:
  explicit TrafficScenario(const CommonOptions& common);
  ~TrafficScenario() override;

  void setup(const std::vector<ClientLoop*>& loops, RunControl& control) override;
  void describe(Report& report) const override;

 protected:
  // The workload for this many loop threads.
  virtual Topology topology(unsigned loops) const = 0;
  // Scenario parameters for the report (describe() adds the engine's own).
  virtual void describe_params(Report& report) const = 0;
  // Messages a publisher may have sent but not yet received by all its receivers, in
  // unlimited mode; scenarios may derive it from the publisher count.
  virtual uint32_t window() const { return common_.window; }
  const CommonOptions& common() const { return common_; }

 private:
  class Worker;
  struct Shared;
  CommonOptions common_;
  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace starling::bench
