// Runs a scenario end to end: builds the client loops, lets the scenario place its clients on
// them, connects, fixes the timeline (warmup, window, drain) once every client is ready,
// samples the broker process during the window, and merges the per-thread results.
#pragma once

#include <vector>

#include "client_loop.h"
#include "options.h"
#include "report.h"

namespace starling::bench {

// A workload. New scenarios (fan-out, fan-in, shared groups, connection storm) implement this
// and reuse the runner, the loops and the report.
class Scenario {
 public:
  virtual ~Scenario() = default;
  virtual const char* name() const = 0;
  // More loop threads than this would have nothing to do.
  virtual unsigned max_threads() const = 0;
  // Before the loops start: add clients to them and give each one its LoopHandler. The
  // scenario owns the handlers and must outlive the run.
  virtual void setup(const std::vector<ClientLoop*>& loops, RunControl& control) = 0;
  // Scenario-specific parameters and warnings for the report.
  virtual void describe(Report& report) const = 0;
  // After the loops have stopped: scenario-specific results (report.results) and warnings.
  virtual void summarize(Report& report) const { (void)report; }
};

// Returns false on failure, with report.error saying why; the report holds whatever the run
// measured up to that point.
bool run_scenario(const CommonOptions& opts, Scenario& scenario, Report& report);

}  // namespace starling::bench
