// Starling's configuration: one TOML file, every key with a default, validated at load.
// An unknown key or a bad value is an error that names the file, the line and the reason.
// Config has one member per section of the file; each section's struct, and how it is read and
// checked, is in the file of that name (listeners.h, http_settings.h, ...).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/auth_settings.h"
#include "config/bridge_settings.h"
#include "config/cluster_settings.h"
#include "config/endpoint.h"
#include "config/error.h"
#include "config/http_settings.h"
#include "config/kafka_settings.h"
#include "config/limits.h"
#include "config/listeners.h"
#include "config/mqtt_settings.h"
#include "config/storage_settings.h"
#include "config/sys_settings.h"
#include "config/webhook_settings.h"

namespace starling::config {

struct Config {
  std::string source;               // file the config came from ("" = built-in defaults)
  unsigned threads = 0;             // 0: one per core
  std::string log_level = "info";   // trace debug info warn error critical off
  std::vector<Listener> listeners;  // [listeners.NAME]; default: "mqtt" on 127.0.0.1:1883
  HttpSettings http;
  StorageSettings storage;
  SysSettings sys;
  MqttSettings mqtt;
  Limits limits;
  AuthSettings auth;
  KafkaSettings kafka;
  ClusterSettings cluster;
  std::vector<BridgeSettings> bridges;    // [[bridges]]
  std::vector<WebhookSettings> webhooks;  // [[webhooks]]
  // Whether a listener lets clients in without a user name or certificate identity.
  bool allows_anonymous(const Listener& l) const {
    return l.allow_anonymous.value_or(!auth.checks_identity());
  }
};

Config defaults();

// Loads and validates a TOML file on top of the defaults. Throws ConfigError.
Config load_file(const std::string& path);
// The same from text (path is used in messages only). Throws ConfigError.
Config load_string(const std::string& text, const std::string& path);

// Command-line overrides, applied after the file.
struct Overrides {
  std::optional<std::string> bind;  // replaces the first MQTT listener's bind
  std::optional<std::string> http;  // "off" disables HTTP
  std::optional<std::string> data_dir;
  std::optional<unsigned> threads;
  std::optional<std::string> log_level;
};
// Throws ConfigError (file "command line", line 0).
void apply_overrides(Config& config, const Overrides& overrides);

// Settings that may change on SIGHUP without a restart. Returns the names of the settings that
// changed but need a restart (listeners, threads, data dir, ...), for the log.
std::vector<std::string> reload_into(Config& live, const Config& fresh);

}  // namespace starling::config
