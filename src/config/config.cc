// Loading the file (the top-level keys, then checks across sections), command-line overrides
// and SIGHUP reloads. The sections are read in their own files.
#include "config/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <utility>

#include "config/reader.h"

namespace starling::config {

namespace {

constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};
constexpr unsigned kMaxThreads = 1024;

const std::vector<Field<Config>>& top_fields() {
  // In this order for "did you mean" hints, which prefer the first of equally near names.
  static const std::vector<Field<Config>> fields = {
      integer_field("threads", &Config::threads, 0, kMaxThreads),
      one_of_field("log_level", &Config::log_level, kLogLevels),
      listeners_section(),
      http_section(),
      storage_section(),
      sys_section(),
      auth_section(),
      kafka_section(),
      cluster_section(),
      bridges_section(),
      webhooks_section(),
      mqtt_section(),
      limits_section(),
  };
  return fields;
}

// The binds the config listens on; `line` finds each one's line in the file (0: not there).
template <typename LineOf>
std::vector<BindUse> bind_uses(const Config& config, LineOf line) {
  std::vector<BindUse> uses;
  for (const Listener& l : config.listeners) {
    uses.push_back({"listeners." + l.name + ".bind", l.bind, line({"listeners", l.name, "bind"})});
  }
  if (config.http.enabled) uses.push_back({"http.bind", config.http.bind, line({"http", "bind"})});
  return uses;
}

// Checks across sections, once the whole file is read: no two binds (HTTP included) collide,
// and the Kafka rules have what they need.
void check(const Reader& r, const Config& config, const toml::table& root) {
  auto line_in_file = [&root](std::initializer_list<std::string_view> keys) {
    toml::node_view<const toml::node> at(root);
    for (std::string_view key : keys)
      at = at[key];
    return at ? line_of(at.node()->source()) : 0;
  };
  auto [reason, line] = find_bind_collision(bind_uses(config, line_in_file));
  if (!reason.empty()) r.fail(line, reason);
  check_kafka(r, config.kafka);
  check_cluster(r, config, line_in_file({"cluster"}));
}

}  // namespace

Config defaults() {
  Config config;
  config.listeners.push_back(default_listener());
  return config;
}

Config load_string(const std::string& text, const std::string& path) {
  const toml::table root = parse_toml(text, path);
  Config config = defaults();
  config.source = path;
  Reader reader(path);
  reader.read_table<Config>(config, root, "", top_fields());
  check(reader, config, root);
  return config;
}

Config load_file(const std::string& path) {
  auto cannot_read = [&path](int err) {
    return ConfigError(path, 0, std::string("cannot read file: ") + std::strerror(err));
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) throw cannot_read(errno);
  std::string text;
  char buffer[8192];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0)
    text.append(buffer, n);
  // fread on a directory fails with EISDIR; report it like a failed open.
  int err = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (err != 0) throw cannot_read(err);
  return load_string(text, path);
}

void apply_overrides(Config& config, const Overrides& overrides) {
  auto fail = [](const std::string& reason) { throw ConfigError("command line", 0, reason); };
  // The same rules as a bind in the file: parseable and a fixed port.
  auto parse_bind = [&fail](const std::string& flag, const std::string& text) {
    Endpoint endpoint;
    try {
      endpoint = parse_endpoint(text);
    } catch (const std::invalid_argument& e) {
      fail(flag + " " + quoted(text) + ": " + e.what());
    }
    if (endpoint.port == 0) {
      fail(flag + " " + quoted(text) +
           ": port 0 is not allowed (clients need a fixed port to connect to)");
    }
    return endpoint;
  };

  // Validate everything before changing anything, so a bad flag leaves the config as it was.
  Config next = config;
  if (overrides.bind) {
    // --bind is the plain MQTT listener: the first one without TLS or a PROXY header, or a new
    // one (first in the list) when the file has none. TLS and WebSocket listeners never move.
    Endpoint bind = parse_bind("--bind", *overrides.bind);
    auto plain = std::find_if(next.listeners.begin(), next.listeners.end(), [](const Listener& l) {
      return l.protocol == "mqtt" && !l.tls() && !l.proxy_protocol;
    });
    if (plain == next.listeners.end()) {
      Listener added = default_listener();
      auto name_taken = [&next](const std::string& name) {
        return std::any_of(next.listeners.begin(), next.listeners.end(),
                           [&name](const Listener& l) { return l.name == name; });
      };
      for (int n = 2; name_taken(added.name); ++n)
        added.name = "mqtt-" + std::to_string(n);
      next.listeners.insert(next.listeners.begin(), added);
      plain = next.listeners.begin();
    }
    plain->bind = bind;
  }
  if (overrides.http) {
    if (*overrides.http == "off") {
      next.http.enabled = false;
    } else {
      next.http.bind = parse_bind("--http", *overrides.http);
      next.http.enabled = true;  // asking for an address means wanting the server
    }
  }
  if (overrides.data_dir) {
    if (overrides.data_dir->empty()) fail("--data must not be empty");
    next.storage.dir = *overrides.data_dir;
  }
  if (overrides.threads) {
    if (*overrides.threads > kMaxThreads) {
      fail("--threads must be in 0.." + std::to_string(kMaxThreads) + ", not " +
           std::to_string(*overrides.threads));
    }
    next.threads = *overrides.threads;
  }
  if (overrides.log_level) {
    if (!one_of(*overrides.log_level, kLogLevels)) {
      fail("--log-level must be one of " + join(kLogLevels) + ", not " +
           quoted(*overrides.log_level));
    }
    next.log_level = *overrides.log_level;
  }
  // Lines are not shown here: a flag may collide with any bind, wherever it came from.
  auto no_lines = [](std::initializer_list<std::string_view>) { return 0; };
  auto [reason, line] = find_bind_collision(bind_uses(next, no_lines));
  if (!reason.empty()) fail(reason);
  config = std::move(next);
}

std::vector<std::string> reload_into(Config& live, const Config& fresh) {
  std::vector<std::string> need_restart;
  // allow_anonymous applies to the next CONNECT; the rest of a listener needs a restart.
  auto shape = [](std::vector<Listener> listeners) {
    for (auto& l : listeners)
      l.allow_anonymous.reset();
    return listeners;
  };
  if (shape(live.listeners) != shape(fresh.listeners)) need_restart.push_back("listeners");
  if (live.http.bind != fresh.http.bind || live.http.enabled != fresh.http.enabled) {
    need_restart.push_back("http");
  }
  if (live.storage.dir != fresh.storage.dir) need_restart.push_back("storage.dir");
  if (live.storage.durability != fresh.storage.durability) {
    need_restart.push_back("storage.durability");
  }
  if (live.threads != fresh.threads) need_restart.push_back("threads");
  // Where rules are written in the file is no change: SourceLine never compares.
  if (live.kafka != fresh.kafka) need_restart.push_back("kafka");
  if (live.cluster != fresh.cluster) need_restart.push_back("cluster");
  // The HTTP auth service, the JWT keys and the webhooks are set up once, at start.
  if (live.auth.http != fresh.auth.http) need_restart.push_back("auth.http");
  if (live.auth.jwt != fresh.auth.jwt) need_restart.push_back("auth.jwt");
  if (live.webhooks != fresh.webhooks) need_restart.push_back("webhooks");

  live.log_level = fresh.log_level;
  live.sys = fresh.sys;
  live.mqtt = fresh.mqtt;
  live.limits = fresh.limits;
  // Password and ACL files are read again by the caller.
  live.auth.password_file = fresh.auth.password_file;
  live.auth.acl_file = fresh.auth.acl_file;
  live.bridges = fresh.bridges;  // a changed bridge reconnects with its new settings
  // Certificates are read again for new connections; the listener's shape needs a restart.
  if (shape(live.listeners) == shape(fresh.listeners)) live.listeners = fresh.listeners;
  // HTTP limits and tokens apply to new requests; the address and the switch need a restart.
  HttpSettings http = fresh.http;
  http.bind = live.http.bind;
  http.enabled = live.http.enabled;
  live.http = std::move(http);
  return need_restart;
}

}  // namespace starling::config
