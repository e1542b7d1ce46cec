// starling-bench: MQTT load generator for Starling (and any MQTT broker on loopback).
//
//   starling-bench pairs --port 1883 --pairs 10 --qos 0 --duration 10
//
// Common options may come before or after the scenario name. Exit status: 0 on success,
// 1 on any error (bad flags, connection refused, broker disconnect, broker process exited).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <thread>

#include "options.h"
#include "report.h"
#include "runner.h"
#include "scenario_pairs.h"
#include "stats.h"

namespace {

using starling::bench::CommonOptions;

// qos is separate from o.qos: CLI11 would treat a uint8_t as a character.
void add_common_options(CLI::App& app, CommonOptions& o, std::string& version, unsigned& qos) {
  app.add_option("--host", o.host, "Broker address: 127.0.0.1, ::1 or localhost only")
      ->capture_default_str();
  app.add_option("--port", o.port, "Broker MQTT port")->capture_default_str();
  app.add_option("--threads", o.threads,
                 "Client threads (default: one per core; never more than useful)")
      ->default_str(std::to_string(std::thread::hardware_concurrency()));
  app.add_option("--mqtt-version", version, "MQTT protocol version: 3.1.1 or 5")
      ->check(CLI::IsMember({"3.1.1", "5"}))
      ->capture_default_str();
  app.add_option("--qos", qos, "QoS of publishes and subscriptions")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
  app.add_option("--payload", o.payload,
                 "Payload bytes; the first 20 carry publisher, sequence and send time")
      ->check(CLI::Range(static_cast<uint32_t>(starling::bench::kPayloadHeaderSize),
                         uint32_t{256 * 1024 * 1024}))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "Measurement window, seconds")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--warmup", o.warmup_s, "Publishing before the window opens, seconds")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--drain", o.drain_s,
                 "After publishers stop: wait at most this long for in-flight messages, seconds")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "Messages per second per publisher; 0: unlimited")
      ->capture_default_str();
  app.add_option("--window", o.window,
                 "Unlimited mode: max messages per publisher sent but not yet received")
      ->check(CLI::Range(1u, 1u << 30))
      ->capture_default_str();
  app.add_option("--inflight", o.max_inflight,
                 "QoS 1/2 publishes per publisher awaiting acknowledgement; 0: the broker's "
                 "Receive Maximum (MQTT 5) or 65535 (3.1.1)")
      ->capture_default_str();
  app.add_option("--stall-timeout", o.stall_timeout_s,
                 "Unlimited mode: a full window with no progress for this long counts as a "
                 "stall (QoS 0: and is reopened), seconds")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--connect-timeout", o.connect_timeout_s,
                 "Time for all clients to connect and subscribe, seconds")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--keep-alive", o.keep_alive, "MQTT keep-alive, seconds (0: off)")
      ->capture_default_str();
  app.add_option("--broker-pid", o.broker_pid,
                 "Sample this process's CPU and RSS every 500 ms during the window");
  app.add_flag("--json", o.json, "Print one JSON object instead of the summary");
  app.add_flag("-q,--quiet", o.quiet, "No progress messages on stderr");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"starling-bench: MQTT load generator (loopback only)"};
  app.require_subcommand(1);
  CommonOptions common;
  std::string version = "5";
  unsigned qos = 0;
  add_common_options(app, common, version, qos);

  starling::bench::PairsOptions pairs_opts;
  CLI::App* pairs = app.add_subcommand(
      "pairs", "N publisher/subscriber pairs; pair i publishes on bench/pair/i to its subscriber");
  pairs->fallthrough();  // common options may follow the scenario name
  pairs->add_option("--pairs", pairs_opts.pairs, "Number of pairs")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  common.qos = static_cast<uint8_t>(qos);
  common.version = version == "3.1.1" ? starling::mqtt::Version::V311 : starling::mqtt::Version::V5;

  starling::bench::Report report;
  bool ok = false;
  if (pairs->parsed()) {
    starling::bench::PairsScenario scenario(common, pairs_opts);
    ok = starling::bench::run_scenario(common, scenario, report);
  }
  if (common.json) {
    starling::bench::print_json(report, stdout);
  } else {
    starling::bench::print_text(report, stdout);
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}
