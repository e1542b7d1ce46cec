#include "config/bridge_settings.h"

#include <set>
#include <string_view>

#include "config/config.h"
#include "config/reader.h"
#include "mqtt/topic.h"

namespace starling::config {

namespace {

constexpr std::string_view kDirections[] = {"out", "in", "both"};
constexpr std::string_view kProtocols[] = {"3.1.1", "5.0"};

std::string read_name(const Reader& r, const toml::node& n, const std::string& path) {
  std::string value = r.string(n, path);
  if (value.empty() || value.size() > 64) r.fail(n, path + " must be 1 to 64 characters");
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      r.fail(n, path + " " + quoted(value) +
                    ": only letters, digits, '_' and '-' (it names the bridge in metrics)");
    }
  }
  return value;
}

// "host:port", "[v6]:port"; the port defaults to 1883 (8883 is not guessed from tls).
BridgeAddress parse_address(const Reader& r, const toml::node& n, const std::string& path,
                            const std::string& text) {
  BridgeAddress a;
  std::string_view rest = text;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) r.fail(n, path + ": " + quoted(text) + " lacks ']'");
    a.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && !rest.starts_with(":")) {
      r.fail(n, path + ": " + quoted(text) + " must be \"[address]:port\"");
    }
  } else {
    const size_t colon = rest.rfind(':');
    a.host = std::string(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
    if (a.host.find(':') != std::string::npos) {
      r.fail(n, path + ": " + quoted(text) + ": write an IPv6 address as \"[::1]:1883\"");
    }
  }
  if (a.host.empty()) r.fail(n, path + ": " + quoted(text) + " has no host");
  if (!rest.empty()) {
    rest.remove_prefix(1);  // ':'
    unsigned port = 0;
    bool digits = !rest.empty() && rest.size() <= 5;
    for (char c : rest) {
      if (c < '0' || c > '9') digits = false;
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (!digits || port == 0 || port > 65535) {
      r.fail(n, path + ": " + quoted(text) + " has no valid port (1-65535)");
    }
    a.port = static_cast<uint16_t>(port);
  }
  return a;
}

std::vector<BridgeAddress> read_addresses(const Reader& r, const toml::node& n,
                                          const std::string& path) {
  std::vector<BridgeAddress> out;
  r.string_array(n, path, false, [&](const toml::node& item, const std::string& v) {
    out.push_back(parse_address(r, item, path, v));
  });
  return out;
}

std::string read_pattern(const Reader& r, const toml::node& n, const std::string& path) {
  std::string value = r.string(n, path);
  std::string_view group, rest;
  if (!value.empty() &&
      (!mqtt::valid_topic_filter(value) || mqtt::split_shared_filter(value, group, rest))) {
    r.fail(n,
           path + " = " + quoted(value) + " is not an MQTT topic filter (such as \"sensors/#\")");
  }
  return value;
}

std::string read_prefix(const Reader& r, const toml::node& n, const std::string& path) {
  std::string value = r.string(n, path);
  if (mqtt::has_wildcard(value) || !mqtt::valid_utf8(value) ||
      value.find('\0') != std::string::npos) {
    r.fail(n, path + " = " + quoted(value) + " must be topic text without wildcards");
  }
  return value;
}

uint8_t read_qos(const Reader& r, const toml::node& n, const std::string& path) {
  return static_cast<uint8_t>(r.integer(n, path, 0, 2));
}

const std::vector<Field<BridgeTopic>>& topic_fields() {
  using T = BridgeTopic;
  static const std::vector<Field<T>> fields = {
      field("pattern", &T::pattern, read_pattern),
      one_of_field("direction", &T::direction, kDirections),
      field("qos", &T::qos, read_qos),
      field("local_prefix", &T::local_prefix, read_prefix),
      field("remote_prefix", &T::remote_prefix, read_prefix),
  };
  return fields;
}

std::vector<BridgeTopic> read_topics(const Reader& r, const toml::node& node,
                                     const std::string& path) {
  std::vector<BridgeTopic> topics;
  r.table_array(node, path, [&](const toml::table& table, const std::string& topic_path) {
    BridgeTopic t;
    t.line.value = line_of(table.source());
    r.read_table<BridgeTopic>(t, table, topic_path, topic_fields());
    // Mosquitto's form `topic "" out 1 local/a remote/b`: the prefixes are the whole topics.
    if (t.pattern.empty()) {
      if (t.local_prefix.empty() || t.remote_prefix.empty()) {
        r.fail(t.line.value,
               topic_path + ": an empty pattern needs local_prefix and remote_prefix (the topics)");
      }
      if (!mqtt::valid_topic_name(t.local_prefix) || !mqtt::valid_topic_name(t.remote_prefix)) {
        r.fail(t.line.value, topic_path + ": with an empty pattern the prefixes are topic names");
      }
    }
    if (!mqtt::valid_topic_filter(t.local_filter()) ||
        !mqtt::valid_topic_filter(t.remote_filter())) {
      r.fail(t.line.value, topic_path + ": prefix + pattern is not a topic filter");
    }
    topics.push_back(std::move(t));
  });
  return topics;
}

const std::vector<Field<BridgeSettings>>& bridge_fields() {
  using B = BridgeSettings;
  static const std::vector<Field<B>> fields = {
      field("name", &B::name, read_name),
      field("addresses", &B::addresses, read_addresses),
      one_of_field("protocol", &B::protocol, kProtocols),
      string_field("client_id", &B::client_id),
      string_field("username", &B::username),
      string_field("password", &B::password),
      integer_field("keep_alive", &B::keep_alive, 0, 65535),
      bool_field("clean_start", &B::clean_start),
      integer_field("session_expiry", &B::session_expiry),
      bool_field("try_private", &B::try_private),
      integer_field("reconnect_min_ms", &B::reconnect_min_ms, 10, 3600000),
      integer_field("reconnect_max_ms", &B::reconnect_max_ms, 10, 3600000),
      integer_field("connect_timeout_ms", &B::connect_timeout_ms, 100, 600000),
      string_field("local_username", &B::local_username),
      integer_field("max_queued_messages", &B::max_queued_messages),
      integer_field("max_queued_bytes", &B::max_queued_bytes),
      bool_field("tls", &B::tls),
      file_field("tls_ca", &B::tls_ca),
      file_field("tls_cert", &B::tls_cert),
      file_field("tls_key", &B::tls_key),
      string_field("tls_server_name", &B::tls_server_name),
      bool_field("tls_verify", &B::tls_verify),
      field("topics", &B::topics, read_topics),
  };
  return fields;
}

std::vector<BridgeSettings> read_bridges(const Reader& r, const toml::node& node,
                                         const std::string& path) {
  std::vector<BridgeSettings> bridges;
  std::set<std::string> names;
  r.table_array(node, path, [&](const toml::table& table, const std::string& bridge_path) {
    BridgeSettings b;
    b.line.value = line_of(table.source());
    r.read_table<BridgeSettings>(b, table, bridge_path, bridge_fields());
    const int line = b.line.value;
    if (b.name.empty()) r.fail(line, bridge_path + " needs a name, e.g. name = \"cloud\"");
    if (!names.insert(b.name).second) {
      r.fail(line, bridge_path + ": a second bridge named " + quoted(b.name));
    }
    if (b.addresses.empty()) {
      r.fail(line, bridge_path + " needs addresses, e.g. addresses = [\"broker.example:1883\"]");
    }
    if (b.topics.empty()) {
      r.fail(line, bridge_path +
                       " needs at least one [[bridges.topics]] rule, e.g. pattern = \"#\", "
                       "direction = \"out\"");
    }
    if (!b.password.empty() && b.username.empty()) {
      r.fail(line, bridge_path + ": a password needs a username");
    }
    if (b.tls_cert.empty() != b.tls_key.empty()) {
      r.fail(line, bridge_path + ": tls_cert and tls_key go together");
    }
    const bool tls_keys =
        !b.tls_ca.empty() || !b.tls_cert.empty() || !b.tls_server_name.empty() || !b.tls_verify;
    if (tls_keys && !b.tls) r.fail(line, bridge_path + ": tls_* keys need tls = true");
    if (b.reconnect_min_ms > b.reconnect_max_ms) {
      r.fail(line, bridge_path + ": reconnect_min_ms is above reconnect_max_ms");
    }
    if (b.client_id.size() > 65535) r.fail(line, bridge_path + ".client_id is too long");
    bridges.push_back(std::move(b));
  });
  return bridges;
}

}  // namespace

Field<Config> bridges_section() {
  return field("bridges", &Config::bridges, read_bridges);
}

}  // namespace starling::config
