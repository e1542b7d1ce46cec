// starling: the MQTT broker. Parses flags, loads the config, starts the workers and waits for
// signals: SIGINT/SIGTERM stop cleanly, SIGHUP reloads what can be reloaded. Under systemd
// (Type=notify) it reports readiness, reloads and stop, and pings the watchdog while its loops
// answer.
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "app/logging.h"
#include "app/passwd_command.h"
#include "app/service_manager.h"
#include "app/watchdog.h"
#include "bridge/bridges.h"
#include "broker/broker.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "hooks/http_auth.h"
#include "hooks/jwks.h"
#include "hooks/webhooks.h"
#include "kafka/bridge.h"
#include "net/server.h"
#include "starling/version.h"
#include "store/durable_directory.h"
#include "store/store.h"

namespace {

using starling::config::Config;
using starling::config::ConfigError;

Config load(const std::string& path, const starling::config::Overrides& overrides) {
  Config config = path.empty() ? starling::config::defaults() : starling::config::load_file(path);
  starling::config::apply_overrides(config, overrides);
  return config;
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

std::string state_dir(const Config& config) {
  return config.storage.dir + "/state";
}

// A consistent copy of the store while running: <data>/backups/<UTC time>.
void backup(starling::store::Store& store, const Config& config) {
  char stamp[32];
  std::time_t t = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&t));
  std::string target = config.storage.dir + "/backups/" + stamp;
  try {
    const std::string backups = config.storage.dir + "/backups";
    starling::store::create_directories_durably(backups);
    store.checkpoint(target);
    // The checkpoint syncs its own files; its entry in backups/ needs this.
    starling::store::sync_directory(backups);
    spdlog::info("backup written to {}", target);
  } catch (const std::exception& e) {
    spdlog::error("backup failed: {}", e.what());
  }
}

}  // namespace

// The node's name in webhook events: the cluster's node id, or the host name.
std::string node_name(const Config& config) {
  if (!config.cluster.node_id.empty()) return config.cluster.node_id;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "starling";
  return host;
}

int main(int argc, char** argv) {
  // `starling passwd ...` manages a password file like mosquitto_passwd; its own argument
  // syntax (mosquitto_passwd's) is parsed by it, not by CLI11.
  if (argc >= 2 && std::string_view(argv[1]) == "passwd") {
    return starling::app::run_passwd_command(argc - 1, argv + 1);
  }
  CLI::App app{"Starling: an MQTT 3.1.1/5.0 broker"};
  std::string config_path;
  bool check_config = false;
  std::string bind, http, data_dir, log_level;
  unsigned threads = 0;
  app.add_option("-c,--config", config_path, "TOML config file (every key has a default)");
  app.add_flag("--check-config", check_config, "Validate the config and exit");
  app.add_option("--bind", bind, "MQTT listener address, e.g. 127.0.0.1:1883");
  app.add_option("--http", http, "HTTP address, e.g. 127.0.0.1:8080, or 'off'");
  app.add_option("--data", data_dir, "Data directory");
  auto* threads_opt = app.add_option("--threads", threads, "Worker threads (0: one per core)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off");
  app.set_version_flag("--version", std::string("starling ") + STARLING_VERSION);
  auto* repair = app.add_subcommand(
      "repair-store", "Try RocksDB's repair on a corrupt store (broker stopped), then exit");
  app.footer(
      "Subcommand passwd: starling passwd [-c] [-D] [-b] [-I iterations] [--scram] FILE USER "
      "[PASSWORD]\n  adds, changes or removes a user of a mosquitto_passwd-format password file.");
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);

  starling::config::Overrides overrides;
  if (!bind.empty()) overrides.bind = bind;
  if (!http.empty()) overrides.http = http;
  if (!data_dir.empty()) overrides.data_dir = data_dir;
  if (threads_opt->count() > 0) overrides.threads = threads;
  if (!log_level.empty()) overrides.log_level = log_level;

  Config config;
  try {
    config = load(config_path, overrides);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "starling: config error: %s\n", e.what());
    return 2;
  }
  if (repair->parsed()) {
    try {
      starling::store::Store::repair(state_dir(config));
      std::printf("repaired %s; check what it kept before starting\n", state_dir(config).c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "starling: %s\n", e.what());
      return 1;
    }
  }
  // The password and ACL files are part of the configuration: a bad line stops the start.
  starling::broker::AccessControl access_check;
  try {
    access_check.load(config.auth);
    starling::net::Server::check_tls(config);
    starling::bridge::Bridges::check(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "starling: config error: %s\n", e.what());
    return 2;
  }
  if (check_config) {
    std::printf("%s: ok\n", config_path.empty() ? "built-in defaults" : config_path.c_str());
    return 0;
  }

  starling::app::configure_logging();
  set_log_level(config.log_level);

  // Signals go to this thread only (sigwait below); workers inherit the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("starling {} starting{}", STARLING_VERSION,
               config_path.empty() ? " with built-in defaults" : " with " + config_path);
  std::unique_ptr<starling::store::Store> store;
  auto durability = starling::store::parse_durability(config.storage.durability);
  if (durability != starling::store::Durability::None) {
    try {
      store = std::make_unique<starling::store::Store>(state_dir(config), durability);
    } catch (const std::exception& e) {
      spdlog::critical("{}", e.what());
      return 1;
    }
    spdlog::info("durable state in {} (durability {})", state_dir(config),
                 starling::store::to_string(durability));
  } else {
    spdlog::info("durability none: state is kept in memory only");
  }
  starling::broker::Broker broker(config, store.get());
  // The cluster before the store is restored: restored subscriptions become its routes.
  std::unique_ptr<starling::cluster::Cluster> cluster;
  if (config.cluster.enabled()) {
    cluster = std::make_unique<starling::cluster::Cluster>(config, broker);
    broker.set_cluster(cluster.get());
  }
  struct DetachCluster {
    starling::broker::Broker& broker;
    ~DetachCluster() { broker.set_cluster(nullptr); }
  } detach_cluster{broker};
  try {
    broker.access().load(config.auth);
    broker.restore(starling::broker::Clock::now());
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  // The systems users already run (src/hooks), before the listeners: the HTTP auth service,
  // the JWKS (its first fetch waited for), the webhooks.
  std::unique_ptr<starling::hooks::HttpAuth> http_auth;
  std::unique_ptr<starling::hooks::JwksRefresher> jwks;
  std::unique_ptr<starling::hooks::Webhooks> webhooks;
  struct Unhook {
    starling::broker::Broker& broker;
    ~Unhook() {
      starling::broker::Events::install(nullptr, 0);
      broker.access().set_external(nullptr);
    }
  } unhook{broker};
  try {
    if (config.auth.http.enabled()) {
      http_auth = std::make_unique<starling::hooks::HttpAuth>(config.auth.http);
      broker.access().set_external(http_auth.get());
    }
    if (!config.auth.jwt.jwks_url.empty()) {
      jwks = std::make_unique<starling::hooks::JwksRefresher>(config.auth.jwt, broker.access());
    }
    if (!config.webhooks.empty()) {
      webhooks = std::make_unique<starling::hooks::Webhooks>(config.webhooks, node_name(config));
      starling::broker::Events::install(webhooks.get(), webhooks->kinds());
    }
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  // The Kafka bridge before the listeners: what it buffered before a restart goes out first,
  // and no publish can miss its rules.
  std::unique_ptr<starling::kafka::Bridge> bridge;
  if (config.kafka.enabled() || config.kafka.mock || cluster) {
    try {
      bridge = std::make_unique<starling::kafka::Bridge>(
          cluster ? starling::cluster::kafka_settings_for_cluster(config) : config.kafka, broker,
          config.cluster.node_id);
      broker.set_bridge(bridge.get());
      bridge->start();
    } catch (const std::exception& e) {
      spdlog::critical("kafka: {}", e.what());
      return 1;
    }
  }
  // The cluster's forwards and state go through the bridge's producer (its durable outbox).
  if (cluster) {
    try {
      cluster->start(bridge->producer(), bridge->bootstrap());
    } catch (const std::exception& e) {
      spdlog::critical("cluster: {}", e.what());
      return 1;
    }
  }
  // The HTTP API (when on) starts with the MQTT listeners and logs its own address.
  if (!config.http.enabled) spdlog::info("HTTP API off");
  starling::net::Server server(config, broker);
  // The broker reaches connections through the server for as long as the server exists.
  broker.set_connection_control(&server);
  struct TakeBack {
    starling::broker::Broker& broker;
    ~TakeBack() { broker.set_connection_control(nullptr); }
  } take_back{broker};
  try {
    server.start();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }

  // The bridges once the workers run: their connections live on the workers' loops.
  starling::bridge::Bridges bridges(broker, server);
  bridges.start(config.bridges);

  starling::app::ServiceManager service;
  service.ready("serving");
  starling::app::Watchdog watchdog(service, [&server] { return server.loops_responsive(); });
  for (;;) {
    const int sig = watchdog.wait_signal(signals);
    if (sig <= 0) continue;
    if (sig == SIGUSR1) {
      if (store) {
        backup(*store, config);
      } else {
        spdlog::warn("SIGUSR1: no store to back up (durability none)");
      }
      continue;
    }
    if (sig == SIGHUP) {
      if (config_path.empty()) {
        spdlog::info("SIGHUP: no config file to reload");
        continue;
      }
      service.reloading();
      try {
        Config fresh = load(config_path, overrides);
        // The password and ACL files first: if one is bad, nothing changes.
        broker.access().load(fresh.auth);
        starling::bridge::Bridges::check(fresh);
        auto needs_restart = starling::config::reload_into(config, fresh);
        set_log_level(config.log_level);
        broker.reload(config);
        server.reload_certificates();
        bridges.reload(config.bridges);
        spdlog::info("SIGHUP: reloaded {} (and the password, ACL and certificate files)",
                     config_path);
        for (const auto& name : needs_restart) {
          spdlog::warn("SIGHUP: '{}' changed but takes effect only after a restart", name);
        }
        service.ready("serving; configuration reloaded");
      } catch (const std::exception& e) {
        spdlog::error("SIGHUP: config not reloaded: {}", e.what());
        service.ready(std::string("serving; configuration not reloaded: ") + e.what());
      }
      continue;
    }
    spdlog::info("{}: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    break;
  }
  service.stopping();
  // Kafka consumers first: nothing new is routed, and what was routed is committed.
  if (bridge) bridge->stop_consumers();
  if (cluster) cluster->stop_reading();
  // The remotes get DISCONNECT; what waits for them stays in the bridges' sessions.
  bridges.stop();
  // Wills of the clients closed here are still forwarded to the other nodes.
  server.stop();
  if (cluster) cluster->leave();
  // In-flight Kafka records get a last chance; what is left stays in the store.
  if (bridge) bridge->stop();
  // Committed writes reach the disk (and wake their connections) while the loops still exist.
  if (store) store->flush();
  return 0;
}
