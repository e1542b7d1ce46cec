// starling-bench: MQTT load generator for Starling (and any MQTT broker on loopback).
//
//   starling-bench pairs --port 1883 --pairs 10 --qos 0 --duration 10
//   starling-bench --preset fanout-qos2 --port 1883 --broker-pid PID
//
// Common options may come before or after the scenario name. Exit status: 0 on success,
// 1 on any error (bad flags, connection refused, broker disconnect, broker process exited).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "options.h"
#include "presets.h"
#include "report.h"
#include "runner.h"
#include "scenario_connections.h"
#include "scenario_fanin.h"
#include "scenario_fanout.h"
#include "scenario_pairs.h"
#include "scenario_retained.h"
#include "scenario_shared.h"
#include "stats.h"

namespace {

using starling::bench::CommonOptions;

constexpr const char* kScenarios[] = {"pairs",  "fanout",      "fanin",
                                      "shared", "connections", "retained"};

// qos is separate from o.qos: CLI11 would treat a uint8_t as a character.
void add_common_options(CLI::App& app, CommonOptions& o, std::string& version, unsigned& qos,
                        int& sub_qos) {
  app.add_option("--host", o.host, "Broker address: 127.0.0.1, ::1 or localhost only")
      ->capture_default_str();
  app.add_option("--port", o.port, "Broker MQTT port")->capture_default_str();
  app.add_option("--sub-port", o.sub_port,
                 "Subscribers connect to this port instead (another node of a cluster)");
  app.add_option("--threads", o.threads,
                 "Client threads (default: one per core; never more than useful)")
      ->default_str(std::to_string(std::thread::hardware_concurrency()));
  app.add_option("--mqtt-version", version, "MQTT protocol version: 3.1.1 or 5")
      ->check(CLI::IsMember({"3.1.1", "5"}))
      ->capture_default_str();
  app.add_option("--qos", qos, "QoS of publishes (and of subscriptions, unless --sub-qos)")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
  app.add_option("--sub-qos", sub_qos, "QoS of subscriptions (default: --qos)")
      ->check(CLI::Range(0, 2));
  app.add_option("--payload", o.payload,
                 "Payload bytes; the first 28 carry publisher, sequence, send and due time")
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
                 "Unlimited mode: max messages per publisher sent but not yet received by all "
                 "its receivers")
      ->check(CLI::Range(1u, 1u << 30))
      ->capture_default_str();
  app.add_option("--count", o.count,
                 "Messages per publisher, then it stops (the run ends once all arrived); 0: "
                 "publish until the window ends")
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
                 "Time for all clients to connect and subscribe, seconds (plus clients / "
                 "--connect-rate when paced)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--connect-rate", o.connect_rate,
                 "New connections per second over all threads; 0: as fast as --max-connecting "
                 "allows")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--max-connecting", o.max_connecting,
                 "Connections between connect() and ready at once, over all threads; 0: no cap")
      ->capture_default_str();
  app.add_option("--session-expiry", o.session_expiry,
                 "MQTT 5 Session Expiry Interval, seconds: persistent sessions (0: clean)");
  app.add_flag("--tls", o.tls, "Connect with TLS (--port is then the broker's TLS listener)");
  app.add_option("--tls-ca", o.tls_ca,
                 "PEM CA file to verify the broker's certificate (default: not verified)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-min-version", o.tls_min_version, "Lowest TLS version: 1.2 or 1.3")
      ->check(CLI::IsMember({"1.2", "1.3"}))
      ->capture_default_str();
  app.add_option("--keep-alive", o.keep_alive, "MQTT keep-alive, seconds (0: off)")
      ->capture_default_str();
  app.add_option("--topic-prefix", o.topic_prefix, "First topic level of every bench topic")
      ->capture_default_str();
  app.add_option("--client-id-prefix", o.client_id_prefix,
                 "Client ids start with this (default: sbench-<pid>, unique per run; a fixed "
                 "prefix reconnects the same ids in a second run)");
  app.add_option("--username", o.username, "User name in every CONNECT");
  app.add_option("--password", o.password, "Password in every CONNECT (with --username)")
      ->needs("--username");
  app.add_option("--broker-pid", o.broker_pid,
                 "Sample this process's CPU and RSS every 500 ms during the window");
  app.add_flag("--json", o.json, "Print one JSON object instead of the summary");
  app.add_flag("-q,--quiet", o.quiet, "No progress messages on stderr");
}

bool parse_list(const std::string& text, std::vector<uint32_t>& out, std::string& error) {
  out.clear();
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    const unsigned long v = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 100000) {
      error = "--publishers: '" + item + "' is not a count in 1..100000";
      return false;
    }
    out.push_back(static_cast<uint32_t>(v));
    pos = comma + 1;
  }
  return true;
}

void list_presets() {
  for (const auto& p : starling::bench::presets()) {
    std::printf("%s\n  %s\n  = starling-bench %s\n\n", p.name, p.description, p.args);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // --preset NAME stands for its command line, put in front of the user's arguments.
  std::vector<std::string> args;
  std::string preset_name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list-presets") {
      list_presets();
      return 0;
    }
    if (a == "--preset" && i + 1 < argc) {
      preset_name = argv[++i];
    } else if (a.rfind("--preset=", 0) == 0) {
      preset_name = a.substr(9);
    } else {
      args.push_back(a);
    }
  }
  if (!preset_name.empty()) {
    const starling::bench::Preset* preset = starling::bench::find_preset(preset_name);
    if (preset == nullptr) {
      std::fprintf(stderr, "starling-bench: no preset '%s'; --list-presets shows them\n",
                   preset_name.c_str());
      return 1;
    }
    for (const std::string& a : args) {
      if (std::find(std::begin(kScenarios), std::end(kScenarios), a) != std::end(kScenarios)) {
        std::fprintf(stderr, "starling-bench: --preset %s already names the scenario; drop '%s'\n",
                     preset_name.c_str(), a.c_str());
        return 1;
      }
    }
    std::vector<std::string> full = starling::bench::preset_args(*preset);
    full.insert(full.end(), args.begin(), args.end());
    args = std::move(full);
  }

  CLI::App app{
      "starling-bench: MQTT load generator (loopback only)\n"
      "  starling-bench [options] SCENARIO [scenario options]\n"
      "  starling-bench --preset NAME [options to override]   (--list-presets shows them)"};
  // A preset's flags come first; the user's repeat of a flag wins.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.require_subcommand(1, 1);
  CommonOptions common;
  common.preset = preset_name;
  std::string version = "5";
  unsigned qos = 0;
  int sub_qos = -1;
  add_common_options(app, common, version, qos, sub_qos);

  starling::bench::PairsOptions pairs_opts;
  CLI::App* pairs = app.add_subcommand(
      "pairs", "N publisher/subscriber pairs; pair i publishes on PREFIX/pair/i to its subscriber");
  pairs->fallthrough();  // common options may follow the scenario name
  pairs->add_option("--pairs", pairs_opts.pairs, "Number of pairs")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();

  starling::bench::FanoutOptions fanout_opts;
  CLI::App* fanout = app.add_subcommand(
      "fanout", "P publishers, S subscribers that each get every message (one topic or +)");
  fanout->fallthrough();
  fanout->add_option("--publishers", fanout_opts.publishers, "Publishers")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  fanout->add_option("--subscribers", fanout_opts.subscribers, "Subscribers")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  fanout->add_flag("--wildcard", fanout_opts.wildcard,
                   "Publisher p uses PREFIX/fanout/p, subscribers PREFIX/fanout/+ (default: "
                   "everyone on PREFIX/fanout)");

  starling::bench::FaninOptions fanin_opts;
  std::string fanin_publishers = "10";
  CLI::App* fanin = app.add_subcommand(
      "fanin", "P publishers on PREFIX/fanin/p, one subscriber on PREFIX/fanin/+");
  fanin->fallthrough();
  fanin
      ->add_option("--publishers", fanin_publishers,
                   "Publishers; a comma-separated list runs a sweep (e.g. 1,8,64)")
      ->capture_default_str();
  fanin
      ->add_option("--total-window", fanin_opts.total_window,
                   "Unlimited mode: messages in flight over all publishers (each gets "
                   "total / P, at least 1); 0: --window per publisher")
      ->capture_default_str();

  starling::bench::SharedOptions shared_opts;
  CLI::App* shared = app.add_subcommand(
      "shared", "P publishers into G shared-subscription groups ($share/gJ/...) of M members");
  shared->fallthrough();
  shared->add_option("--publishers", shared_opts.publishers, "Publishers")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();
  shared->add_option("--groups", shared_opts.groups, "Shared-subscription groups")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  shared->add_option("--members", shared_opts.members, "Members per group")
      ->check(CLI::Range(1u, 100000u))
      ->capture_default_str();

  starling::bench::ConnectionsOptions conn_opts;
  CLI::App* connections = app.add_subcommand(
      "connections",
      "Connection storm: open N idle connections, hold them, ping them; memory per connection");
  connections->fallthrough();
  connections->add_option("--connections", conn_opts.connections, "Connections")
      ->check(CLI::Range(1u, 10000000u))
      ->capture_default_str();
  connections->add_flag("--subscribe", conn_opts.subscribe,
                        "Each connection subscribes to its own topic PREFIX/conn/i");

  starling::bench::RetainedOptions retained_opts;
  CLI::App* retained = app.add_subcommand(
      "retained",
      "Retained storm: store R retained messages, S subscribers fetch them all, repeatedly");
  retained->fallthrough();
  retained->add_option("--retained", retained_opts.retained, "Retained messages")
      ->check(CLI::Range(1u, 10000000u))
      ->capture_default_str();
  retained->add_option("--subscribers", retained_opts.subscribers, "Subscribers")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();

  try {
    std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
    app.name(argv[0]);
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  common.qos = static_cast<uint8_t>(qos);
  common.sub_qos = static_cast<uint8_t>(sub_qos < 0 ? qos : static_cast<unsigned>(sub_qos));
  common.version = version == "3.1.1" ? starling::mqtt::Version::V311 : starling::mqtt::Version::V5;
  if (!preset_name.empty() && !common.quiet) {
    std::fprintf(stderr, "starling-bench: preset %s = %s\n", preset_name.c_str(),
                 starling::bench::find_preset(preset_name)->args);
  }

  std::vector<starling::bench::Report> reports;
  std::string sweep_param;
  auto run = [&](starling::bench::Scenario& scenario) {
    reports.emplace_back();
    return starling::bench::run_scenario(common, scenario, reports.back());
  };
  bool ok = true;
  if (pairs->parsed()) {
    starling::bench::PairsScenario scenario(common, pairs_opts);
    ok = run(scenario);
  } else if (fanout->parsed()) {
    starling::bench::FanoutScenario scenario(common, fanout_opts);
    ok = run(scenario);
  } else if (fanin->parsed()) {
    std::string error;
    if (!parse_list(fanin_publishers, fanin_opts.publishers, error)) {
      std::fprintf(stderr, "starling-bench: %s\n", error.c_str());
      return 1;
    }
    if (fanin_opts.publishers.size() > 1) sweep_param = "publishers";
    for (size_t i = 0; i < fanin_opts.publishers.size(); ++i) {
      if (i > 0) {
        // Let the broker finish tearing down the previous run's connections.
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      const uint32_t p = fanin_opts.publishers[i];
      if (!common.quiet && sweep_param.size() > 0) {
        std::fprintf(stderr, "starling-bench: sweep step %zu of %zu: %u publishers\n", i + 1,
                     fanin_opts.publishers.size(), p);
      }
      starling::bench::FaninScenario scenario(common, p, fanin_opts.total_window);
      ok = run(scenario) && ok;
      if (reports.back().error == "interrupted") break;
    }
  } else if (shared->parsed()) {
    starling::bench::SharedScenario scenario(common, shared_opts);
    ok = run(scenario);
  } else if (connections->parsed()) {
    starling::bench::ConnectionsScenario scenario(common, conn_opts);
    ok = run(scenario);
  } else if (retained->parsed()) {
    starling::bench::RetainedScenario scenario(common, retained_opts);
    ok = run(scenario);
  }

  if (!sweep_param.empty()) {
    if (common.json) {
      starling::bench::print_sweep_json(reports, sweep_param, stdout);
    } else {
      starling::bench::print_sweep_text(reports, sweep_param, stdout);
    }
  } else if (!reports.empty()) {
    if (common.json) {
      starling::bench::print_json(reports.front(), stdout);
    } else {
      starling::bench::print_text(reports.front(), stdout);
    }
  }
  std::fflush(stdout);
  return ok ? 0 : 1;
}
