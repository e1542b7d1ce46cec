// Every [[bridges]] entry as a running BridgeLink, spread over the workers' loops: started with
// the server, changed on SIGHUP (a bridge whose settings changed reconnects with the new ones;
// a new one starts; a removed one stops and its session stays until it expires never: see
// docs/bridges.md), stopped before the workers. Also the broker's window on them.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bridge/bridge_link.h"
#include "broker/broker.h"
#include "broker/mqtt_bridges.h"
#include "config/config.h"
#include "net/server.h"

namespace starling::bridge {

class Bridges final : public broker::MqttBridges {
 public:
  Bridges(broker::Broker& broker, net::Server& server);
  ~Bridges() override;

  // Loads every bridge's TLS files as start() will: --check-config and the start fail on
  // unusable ones. Throws config::ConfigError (the bridge's line).
  static void check(const config::Config& config);

  void start(const std::vector<config::BridgeSettings>& bridges);
  void reload(const std::vector<config::BridgeSettings>& bridges);
  // Each remote gets DISCONNECT; the sessions stay, with what they queued.
  void stop();

  // broker::MqttBridges
  std::vector<broker::MqttBridgeInfo> list() const override;
  broker::BridgeStatus status() const override;
  void render_metrics(std::string& out) const override;

 private:
  void start_one(const config::BridgeSettings& settings);
  void stop_one(std::unique_ptr<BridgeLink> link);

  broker::Broker& broker_;
  net::Server& server_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<BridgeLink>> links_;
  size_t next_worker_ = 0;
};

}  // namespace starling::bridge
