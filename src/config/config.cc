#include "config/config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <span>
#include <string_view>
#include <utility>

// toml++ is used header-only (its default), so this is the one TU that compiles it and nothing
// needs to link libtomlplusplus. It lives in /usr/include, so g++ treats it as a system header
// and -Wall -Wextra -Wpedantic -Werror do not apply inside it.
//
// toml++ 3.3 (Debian 12) marks a branch unreachable that some code points reach
// (is_non_ascii_horizontal_whitespace; fuzz_config found it). find_unsafe_code_point() below keeps
// such text from the parser; should another path get there, a trap is a clean crash where
// __builtin_unreachable() would be undefined behaviour.
#include <fmt/format.h>

#include <toml++/impl/preprocessor.h>
#undef TOML_UNREACHABLE
#define TOML_UNREACHABLE __builtin_trap()
#include <toml++/toml.h>

#include <librdkafka/rdkafka.h>

#include "kafka/template.h"
#include "mqtt/topic.h"

namespace starling::config {

namespace {

constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};
constexpr std::string_view kListenerProtocols[] = {"mqtt", "ws"};
constexpr std::string_view kTlsVersions[] = {"1.2", "1.3"};
constexpr std::string_view kDurabilities[] = {"none", "batch", "always"};
constexpr std::string_view kTokenScopes[] = {"read", "publish", "admin"};
// Shorter tokens are too easy to guess for something that can publish or kick clients.
constexpr size_t kMinTokenLength = 16;
constexpr unsigned kMaxThreads = 1024;
constexpr uint16_t kDefaultMqttPort = 1883;
constexpr std::string_view kProduceModes[] = {"async", "sync"};
constexpr std::string_view kOffsetResets[] = {"earliest", "latest"};
constexpr std::string_view kCodecs[] = {"none", "avro-confluent"};
constexpr std::string_view kKafkaHeaders[] = {"topic",  "clientid",     "username",       "qos",
                                              "retain", "content_type", "user_properties"};
// librdkafka's partitioners, and "key-hash" (murmur2 of the key, as the Java client does).
constexpr std::string_view kPartitioners[] = {
    "key-hash", "random",         "consistent", "consistent_random",
    "murmur2",  "murmur2_random", "fnv1a",      "fnv1a_random"};

std::string quoted(std::string_view s) {
  std::string out = "\"";
  out += s;
  out += '"';
  return out;
}

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

bool one_of(std::string_view value, std::span<const std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

// Levenshtein distance, for "did you mean" hints on misspelt keys.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool is_ipv4_literal(const std::string& host) {
  in_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6_literal(const std::string& host) {
  in6_addr addr;
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

// A DNS name: letters, digits, '-' and '.', labels not starting or ending with '-'.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label_start = 0;
  for (size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      std::string_view label = host.substr(label_start, i - label_start);
      if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
        return false;
      }
      label_start = i + 1;
      continue;
    }
    char c = host[i];
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

Listener default_listener() {
  return Listener{"mqtt", Endpoint{"127.0.0.1", kDefaultMqttPort}};
}

// Two binds collide if they are equal, or if one is the wildcard of the other's address family
// on the same port (Linux refuses that pair with EADDRINUSE). "::" and "0.0.0.0" may coexist:
// that is the usual dual-listener setup with IPV6_V6ONLY.
bool binds_collide(const Endpoint& a, const Endpoint& b) {
  if (a.port != b.port) return false;
  if (a.host == b.host) return true;
  auto covers = [](const Endpoint& wild, const Endpoint& other) {
    if (wild.host == "0.0.0.0") return is_ipv4_literal(other.host);
    if (wild.host == "::") return is_ipv6_literal(other.host);
    return false;
  };
  return covers(a, b) || covers(b, a);
}

// Where each bind came from, for collision errors.
struct BindUse {
  std::string what;  // "listeners.mqtt.bind", "http.bind", "--bind"
  Endpoint bind;
  int line;
};

// Returns the reason for the first collision, or "" when the binds are all distinct.
std::pair<std::string, int> find_bind_collision(const std::vector<BindUse>& uses) {
  for (size_t i = 0; i < uses.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (binds_collide(uses[i].bind, uses[j].bind)) {
        std::string reason = uses[i].what + " " + quoted(to_string(uses[i].bind)) +
                             " collides with " + uses[j].what + " " +
                             quoted(to_string(uses[j].bind));
        if (uses[j].line > 0) reason += " (line " + std::to_string(uses[j].line) + ")";
        return {reason, uses[i].line};
      }
    }
  }
  return {"", 0};
}

std::vector<BindUse> bind_uses(const Config& config) {
  std::vector<BindUse> uses;
  for (const Listener& l : config.listeners) {
    uses.push_back({"listeners." + l.name + ".bind", l.bind, 0});
  }
  if (config.http_enabled) uses.push_back({"http.bind", config.http, 0});
  return uses;
}

// ---------------------------------------------------------------------------------------------
// Reading a parsed TOML document into a Config.

int line_of(const toml::source_region& region) {
  return static_cast<int>(region.begin.line);
}

class Reader;

// One known key of a table: how to read its value into S.
template <typename S>
struct Field {
  std::string_view name;
  std::function<void(Reader&, S&, const toml::node&, const std::string& path)> read;
};

class Reader {
 public:
  explicit Reader(const std::string& file) : file_(file) {}

  [[noreturn]] void fail(int line, const std::string& reason) const {
    throw ConfigError(file_, line, reason);
  }
  [[noreturn]] void fail(const toml::node& node, const std::string& reason) const {
    fail(line_of(node.source()), reason);
  }

  int64_t integer(const toml::node& node, const std::string& path, int64_t lo, int64_t hi) const {
    const auto* v = node.as_integer();
    if (v == nullptr || v->get() < lo || v->get() > hi) {
      fail(node, path + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return v->get();
  }

  bool boolean(const toml::node& node, const std::string& path) const {
    const auto* v = node.as_boolean();
    if (v == nullptr) fail(node, path + " must be true or false");
    return v->get();
  }

  std::string string(const toml::node& node, const std::string& path) const {
    const auto* v = node.as_string();
    if (v == nullptr) fail(node, path + " must be a string");
    return v->get();
  }

  std::string one_of_strings(const toml::node& node, const std::string& path,
                             std::span<const std::string_view> allowed) const {
    std::string value = string(node, path);
    if (!one_of(value, allowed)) {
      fail(node, path + " must be one of " + join(allowed) + ", not " + quoted(value));
    }
    return value;
  }

  // A path to a file that exists and can be read now.
  std::string readable_file(const toml::node& node, const std::string& path) const {
    std::string value = string(node, path);
    if (value.empty()) fail(node, path + " must not be empty");
    if (::access(value.c_str(), R_OK) != 0) {
      fail(node, path + " = " + quoted(value) + ": " + std::strerror(errno));
    }
    return value;
  }

  // A bind address for a listener or the HTTP server: a fixed, non-zero port.
  Endpoint bind(const toml::node& node, const std::string& path) const {
    std::string text = string(node, path);
    Endpoint endpoint;
    try {
      endpoint = parse_endpoint(text);
    } catch (const std::invalid_argument& e) {
      fail(node, path + " = " + quoted(text) + ": " + e.what());
    }
    if (endpoint.port == 0) {
      fail(node, path + " = " + quoted(text) +
                     ": port 0 is not allowed (clients need a fixed port to connect to)");
    }
    return endpoint;
  }

  const toml::table& table(const toml::node& node, const std::string& path) const {
    const auto* t = node.as_table();
    if (t == nullptr) fail(node, path + " must be a table ([" + path + "])");
    return *t;
  }

  // Reads every key of `table` with the matching field; any other key is an error.
  template <typename S>
  void read_table(S& out, const toml::table& table, const std::string& prefix,
                  std::span<const Field<S>> fields) {
    for (auto&& [key, node] : table) {
      std::string path =
          prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
      // By name, not the binding: clang 14 cannot capture structured bindings.
      std::string_view name = key.str();
      auto field = std::find_if(fields.begin(), fields.end(),
                                [name](const Field<S>& f) { return f.name == name; });
      if (field == fields.end()) unknown_key(key, node, path, fields);
      field->read(*this, out, node, path);
    }
  }

 private:
  template <typename S>
  [[noreturn]] void unknown_key(const toml::key& key, const toml::node& node,
                                const std::string& path, std::span<const Field<S>> fields) const {
    std::string reason =
        node.is_table() ? "unknown table [" + path + "]" : "unknown key " + quoted(path);
    // Suggest only near misses: at most two edits, and at most a third of the name ("tls" is
    // not a misspelt "sys").
    std::string_view best;
    size_t best_distance = 3;
    for (const Field<S>& f : fields) {
      size_t d = edit_distance(key.str(), f.name);
      if (d < best_distance && d * 3 <= key.str().size()) {
        best = f.name;
        best_distance = d;
      }
    }
    if (!best.empty()) reason += " (did you mean " + quoted(best) + "?)";
    fail(line_of(key.source()), reason);
  }

  const std::string& file_;
};

// Field makers: each checks the TOML type and the range of the member it fills.
template <typename S, typename M>
Field<S> int_field(std::string_view name, M S::*member, int64_t lo, int64_t hi) {
  return {name, [member, lo, hi](Reader& r, S& s, const toml::node& n, const std::string& path) {
            s.*member = static_cast<M>(r.integer(n, path, lo, hi));
          }};
}

// The full range of an unsigned member type, clipped to what TOML integers can hold.
template <typename M>
constexpr int64_t max_of() {
  constexpr auto max = std::numeric_limits<M>::max();
  if constexpr (max > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::numeric_limits<int64_t>::max();
  } else {
    return static_cast<int64_t>(max);
  }
}

template <typename S, typename M>
Field<S> uint_field(std::string_view name, M S::*member, int64_t lo = 0) {
  return int_field(name, member, lo, max_of<M>());
}

template <typename S>
Field<S> bool_field(std::string_view name, bool S::*member) {
  return {name, [member](Reader& r, S& s, const toml::node& n, const std::string& path) {
            s.*member = r.boolean(n, path);
          }};
}

// A string the broker sends as an MQTT UTF-8 string (at most 65535 bytes).
template <typename S>
Field<S> mqtt_string_field(std::string_view name, std::string S::*member) {
  return {name, [member](Reader& r, S& s, const toml::node& n, const std::string& path) {
            std::string value = r.string(n, path);
            if (value.size() > 65535) r.fail(n, path + " must be at most 65535 bytes");
            s.*member = std::move(value);
          }};
}

const std::vector<Field<MqttSettings>>& mqtt_fields() {
  using M = MqttSettings;
  static const std::vector<Field<M>> fields = {
      // Below 20 bytes ordinary CONNECTs would be refused; 268435455 is the protocol's maximum.
      int_field("max_packet_size", &M::max_packet_size, 20, 268435455),
      // 0 is a protocol error for Receive Maximum, and an inflight cap of 0 would stall QoS 1/2.
      uint_field("receive_maximum", &M::receive_maximum, 1),
      uint_field("max_inflight", &M::max_inflight, 1),
      uint_field("topic_alias_maximum", &M::topic_alias_maximum),  // 0: no aliases
      int_field("max_qos", &M::max_qos, 0, 2),
      bool_field("retain_available", &M::retain_available),
      bool_field("wildcard_subscriptions", &M::wildcard_subscriptions),
      bool_field("shared_subscriptions", &M::shared_subscriptions),
      bool_field("subscription_identifiers", &M::subscription_identifiers),
      // Lowering every keep alive to 0 would silently switch keep alive off for all clients.
      uint_field("max_keep_alive", &M::max_keep_alive, 1),
      uint_field("max_session_expiry", &M::max_session_expiry),
      bool_field("allow_empty_client_id", &M::allow_empty_client_id),
      uint_field("retry_interval_ms", &M::retry_interval_ms),
      mqtt_string_field("response_information", &M::response_information),
  };
  return fields;
}

const std::vector<Field<Limits>>& limits_fields() {
  using L = Limits;
  // Zero is allowed only where it means "no limit"; elsewhere it would refuse all traffic.
  static const std::vector<Field<L>> fields = {
      uint_field("max_queued_messages", &L::max_queued_messages, 1),
      uint_field("max_queued_bytes", &L::max_queued_bytes, 1),
      uint_field("queue_resident_messages", &L::queue_resident_messages, 1),
      uint_field("max_out_buffer_bytes", &L::max_out_buffer_bytes, 1),
      uint_field("max_connections", &L::max_connections),
      // Topics and client ids are MQTT strings: at most 65535 bytes.
      int_field("max_topic_length", &L::max_topic_length, 1, 65535),
      int_field("max_topic_levels", &L::max_topic_levels, 1, 65535),
      uint_field("max_subscriptions_per_client", &L::max_subscriptions_per_client),
      int_field("max_client_id_length", &L::max_client_id_length, 1, 65535),
      uint_field("connect_timeout_ms", &L::connect_timeout_ms, 1),
      uint_field("max_connections_per_address", &L::max_connections_per_address),
      uint_field("max_connection_rate_per_address", &L::max_connection_rate_per_address),
      uint_field("max_publish_rate", &L::max_publish_rate),
      uint_field("slow_client_timeout_ms", &L::slow_client_timeout_ms, 1),
  };
  return fields;
}

// A string array whose items each pass check (which fails with its own reason).
template <typename Check>
std::vector<std::string> string_array(Reader& r, const toml::node& n, const std::string& path,
                                      bool allow_empty, Check check) {
  const auto* array = n.as_array();
  if (array == nullptr || (!allow_empty && array->empty())) {
    r.fail(n, path + " must be " + (allow_empty ? "an" : "a non-empty") + " array of strings");
  }
  std::vector<std::string> out;
  for (const toml::node& item : *array) {
    std::string value = r.string(item, path);
    check(item, value);
    out.push_back(std::move(value));
  }
  return out;
}

std::vector<std::string> string_array(Reader& r, const toml::node& n, const std::string& path,
                                      bool allow_empty) {
  return string_array(r, n, path, allow_empty, [](const toml::node&, const std::string&) {});
}

// --- [listeners.NAME] -------------------------------------------------------------------------

// A listener as read, with the place it was declared (for file order and error lines).
struct PendingListener {
  Listener listener;
  toml::source_position table_pos;
  int bind_line = 0;
  std::set<std::string> keys;  // the keys the table set, for settings that go together
};

struct Document {
  Config config;
  std::vector<PendingListener> listeners;
  int http_bind_line = 0;
};

Field<PendingListener> listener_string(std::string_view name, std::string Listener::*member) {
  return {name, [member](Reader& r, PendingListener& p, const toml::node& n,
                         const std::string& path) { p.listener.*member = r.string(n, path); }};
}

Field<PendingListener> listener_bool(std::string_view name, bool Listener::*member) {
  return {name, [member](Reader& r, PendingListener& p, const toml::node& n,
                         const std::string& path) { p.listener.*member = r.boolean(n, path); }};
}

// A file the listener reads at start (and on SIGHUP): checked now, so a typo fails at load with
// the line instead of at the first TLS handshake.
Field<PendingListener> listener_file(std::string_view name, std::string Listener::*member) {
  return {name,
          [member](Reader& r, PendingListener& p, const toml::node& n, const std::string& path) {
            p.listener.*member = r.readable_file(n, path);
          }};
}

const std::vector<Field<PendingListener>>& listener_fields() {
  using P = PendingListener;
  static const std::vector<Field<P>> fields = {
      {"bind",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.listener.bind = r.bind(n, path);
         p.bind_line = line_of(n.source());
       }},
      {"protocol",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.listener.protocol = r.one_of_strings(n, path, kListenerProtocols);
       }},
      {"ws_path",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         std::string value = r.string(n, path);
         if (value.empty() || value[0] != '/' || value.find_first_of(" ?#") != std::string::npos) {
           r.fail(n, path + " must be a path starting with '/', without spaces, '?' or '#'");
         }
         p.listener.ws_path = value;
       }},
      {"ws_allowed_origins",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.listener.ws_allowed_origins = string_array(r, n, path, false);
       }},
      listener_file("tls_cert", &Listener::tls_cert),
      listener_file("tls_key", &Listener::tls_key),
      listener_file("tls_ca", &Listener::tls_ca),
      listener_bool("require_client_cert", &Listener::require_client_cert),
      listener_bool("username_from_cert", &Listener::username_from_cert),
      {"tls_min_version",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.listener.tls_min_version = r.one_of_strings(n, path, kTlsVersions);
       }},
      listener_string("tls_ciphers", &Listener::tls_ciphers),
      listener_string("tls_ciphersuites", &Listener::tls_ciphersuites),
      {"allow_anonymous",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.listener.allow_anonymous = r.boolean(n, path);
       }},
      listener_bool("proxy_protocol", &Listener::proxy_protocol),
      {"max_connections",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.listener.max_connections =
             static_cast<uint32_t>(r.integer(n, path, 0, max_of<uint32_t>()));
       }},
  };
  return fields;
}

// TLS settings only make sense together: say which one is missing where the listener is.
void check_listener(Reader& r, const PendingListener& p, int table_line) {
  const Listener& l = p.listener;
  const std::string path = "listeners." + l.name;
  if (l.tls_cert.empty() != l.tls_key.empty()) {
    r.fail(table_line, path + ": tls_cert and tls_key go together (set both or neither)");
  }
  if (!l.tls()) {
    const char* tls_only[] = {"tls_ca",          "require_client_cert", "username_from_cert",
                              "tls_min_version", "tls_ciphers",         "tls_ciphersuites"};
    for (const char* key : tls_only) {
      if (p.keys.count(key)) {
        r.fail(table_line,
               path + "." + key + " needs TLS on this listener (set tls_cert and tls_key)");
      }
    }
  }
  if (l.require_client_cert && l.tls_ca.empty()) {
    r.fail(table_line, path +
                           ".require_client_cert needs tls_ca (the CAs client certificates "
                           "are checked against)");
  }
  if (l.username_from_cert && !l.require_client_cert) {
    r.fail(table_line, path + ".username_from_cert needs require_client_cert = true");
  }
  if (l.protocol != "ws") {
    for (const char* key : {"ws_path", "ws_allowed_origins"}) {
      if (p.keys.count(key)) r.fail(table_line, path + "." + key + " needs protocol = \"ws\"");
    }
  }
}

void read_listeners(Reader& r, Document& doc, const toml::node& node) {
  const auto* listeners = node.as_table();
  if (listeners == nullptr) {
    r.fail(node, "listeners must be a table of listeners, e.g. [listeners.mqtt]");
  }
  for (auto&& [key, value] : *listeners) {
    std::string name(key.str());
    std::string path = "listeners." + name;
    if (name.empty()) r.fail(line_of(key.source()), "a listener needs a non-empty name");
    const toml::table& table = r.table(value, path);
    PendingListener pending{Listener{name, Endpoint{}}, table.source().begin};
    pending.listener.line.value = line_of(table.source());
    r.read_table<PendingListener>(pending, table, path, listener_fields());
    for (auto&& [k, v] : table)
      pending.keys.insert(std::string(k.str()));
    if (pending.bind_line == 0) {
      r.fail(line_of(table.source()),
             path + " needs a bind address, e.g. bind = \"127.0.0.1:1883\"");
    }
    check_listener(r, pending, line_of(table.source()));
    doc.listeners.push_back(std::move(pending));
  }
}

// One [http.tokens.NAME] table as read, with the line of its table for errors.
struct PendingToken {
  ApiToken token;
  int token_line = 0;
  bool has_scopes = false;
};

const std::vector<Field<PendingToken>>& token_fields() {
  using P = PendingToken;
  static const std::vector<Field<P>> fields = {
      {"token",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         std::string token = r.string(n, path);
         if (token.size() < kMinTokenLength) {
           r.fail(n, path + " must be at least " + std::to_string(kMinTokenLength) +
                         " characters long");
         }
         // It travels in an Authorization header: visible ASCII only.
         for (char c : token) {
           if (c <= 0x20 || c >= 0x7F) {
             r.fail(n, path + " must be visible ASCII characters (no spaces)");
           }
         }
         p.token.token = token;
         p.token_line = line_of(n.source());
       }},
      {"scopes",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         const auto* array = n.as_array();
         if (array == nullptr || array->empty()) {
           r.fail(n, path + " must be a non-empty array of scopes: " + join(kTokenScopes));
         }
         for (const toml::node& item : *array) {
           std::string scope = r.one_of_strings(item, path, kTokenScopes);
           if (std::find(p.token.scopes.begin(), p.token.scopes.end(), scope) !=
               p.token.scopes.end()) {
             r.fail(item, path + " lists " + quoted(scope) + " twice");
           }
           p.token.scopes.push_back(scope);
         }
         p.has_scopes = true;
       }},
  };
  return fields;
}

void read_tokens(Reader& r, Document& doc, const toml::node& node) {
  const auto* tokens = node.as_table();
  if (tokens == nullptr) {
    r.fail(node, "http.tokens must be a table of tokens, e.g. [http.tokens.grafana]");
  }
  for (auto&& [key, value] : *tokens) {
    std::string name(key.str());
    std::string path = "http.tokens." + name;
    if (name.empty()) r.fail(line_of(key.source()), "a token needs a non-empty name");
    const toml::table& table = r.table(value, path);
    PendingToken pending;
    pending.token.name = name;
    r.read_table<PendingToken>(pending, table, path, token_fields());
    if (pending.token_line == 0) {
      r.fail(line_of(table.source()), path + " needs a token, e.g. token = \"<random string>\"");
    }
    if (!pending.has_scopes) {
      r.fail(line_of(table.source()),
             path + " needs scopes, e.g. scopes = [\"read\", \"publish\"]");
    }
    for (const ApiToken& other : doc.config.http_settings.tokens) {
      if (other.token == pending.token.token) {
        r.fail(pending.token_line,
               path + ".token is the same as http.tokens." + other.name + ".token");
      }
    }
    doc.config.http_settings.tokens.push_back(std::move(pending.token));
  }
}

// An [http] integer limit into HttpSettings.
template <typename M>
Field<Document> http_int(std::string_view name, M HttpSettings::*member, int64_t lo, int64_t hi) {
  return {name,
          [member, lo, hi](Reader& r, Document& d, const toml::node& n, const std::string& path) {
            d.config.http_settings.*member = static_cast<M>(r.integer(n, path, lo, hi));
          }};
}

const std::vector<Field<Document>>& http_fields() {
  using D = Document;
  using H = HttpSettings;
  static const std::vector<Field<D>> fields = {
      {"bind",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.http = r.bind(n, path);
         d.http_bind_line = line_of(n.source());
       }},
      {"enabled", [](Reader& r, D& d, const toml::node& n,
                     const std::string& path) { d.config.http_enabled = r.boolean(n, path); }},
      // Up to the largest MQTT packet: a bigger body could not be published anyway.
      http_int("max_body_bytes", &H::max_body_bytes, 1, 268435455),
      // http-parser's own limit is 80 KiB; ours must stay below it to be the one that answers.
      http_int("max_header_bytes", &H::max_header_bytes, 1024, 65536),
      http_int("idle_timeout_ms", &H::idle_timeout_ms, 100, 86400000),
      http_int("request_timeout_ms", &H::request_timeout_ms, 100, 3600000),
      http_int("max_connections", &H::max_connections, 0, max_of<uint32_t>()),
      {"tokens",
       [](Reader& r, D& d, const toml::node& n, const std::string&) { read_tokens(r, d, n); }},
  };
  return fields;
}

const std::vector<Field<Document>>& storage_fields() {
  using D = Document;
  static const std::vector<Field<D>> fields = {
      {"dir",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         std::string dir = r.string(n, path);
         if (dir.empty()) r.fail(n, path + " must not be empty");
         d.config.data_dir = dir;
       }},
      {"durability",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.durability = r.one_of_strings(n, path, kDurabilities);
       }},
  };
  return fields;
}

const std::vector<Field<Document>>& sys_fields() {
  using D = Document;
  static const std::vector<Field<D>> fields = {
      {"interval",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.sys_interval_s = static_cast<uint32_t>(r.integer(n, path, 0, max_of<uint32_t>()));
       }},
  };
  return fields;
}

// --- [kafka] ----------------------------------------------------------------------------------

kafka::Template kafka_template(Reader& r, const toml::node& n, const std::string& path,
                               kafka::Template::Direction direction) {
  std::string text = r.string(n, path);
  try {
    return kafka::Template::parse(text, direction);
  } catch (const std::invalid_argument& e) {
    r.fail(n, path + " = " + quoted(text) + ": " + e.what());
  }
}

struct PendingProduce {
  KafkaProduceRule rule;
  bool has_filter = false;
  bool has_topic = false;
};

const std::vector<Field<PendingProduce>>& produce_fields() {
  using P = PendingProduce;
  using Dir = kafka::Template::Direction;
  static const std::vector<Field<P>> fields = {
      {"filter",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         std::string filter = r.string(n, path);
         std::string_view group, rest;
         if (!mqtt::valid_topic_filter(filter) || mqtt::split_shared_filter(filter, group, rest)) {
           r.fail(n, path + " = " + quoted(filter) +
                         " is not an MQTT topic filter (such as \"sensors/#\")");
         }
         p.rule.filter = filter;
         p.has_filter = true;
       }},
      {"topic",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         kafka::Template t = kafka_template(r, n, path, Dir::ToKafka);
         if (t.constant() && !kafka::valid_kafka_topic(t.literal())) {
           r.fail(n, path + " = " + quoted(t.text()) +
                         " is not a Kafka topic name (1-249 of A-Z a-z 0-9 . _ -)");
         }
         p.rule.topic = t.text();
         p.has_topic = true;
       }},
      {"key",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.rule.key = kafka_template(r, n, path, Dir::ToKafka).text();
       }},
      {"headers",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.rule.headers = string_array(r, n, path, true, [&](const toml::node& item, auto& v) {
           if (!one_of(v, kKafkaHeaders)) {
             r.fail(item,
                    path + " items must be among " + join(kKafkaHeaders) + ", not " + quoted(v));
           }
         });
       }},
      {"partitioner",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.rule.partitioner = r.one_of_strings(n, path, kPartitioners);
       }},
      {"mode",
       [](Reader& r, P& p, const toml::node& n, const std::string& path) {
         p.rule.mode = r.one_of_strings(n, path, kProduceModes);
       }},
  };
  return fields;
}

const std::vector<Field<KafkaConsumeRule>>& consume_fields() {
  using C = KafkaConsumeRule;
  using Dir = kafka::Template::Direction;
  static const std::vector<Field<C>> fields = {
      {"topics",
       [](Reader& r, C& c, const toml::node& n, const std::string& path) {
         c.topics = string_array(r, n, path, false, [&](const toml::node& item, auto& v) {
           if (!v.starts_with("^") && !kafka::valid_kafka_topic(v)) {
             r.fail(item, path + ": " + quoted(v) +
                              " is neither a Kafka topic name nor a regex starting with '^'");
           }
         });
       }},
      {"group",
       [](Reader& r, C& c, const toml::node& n, const std::string& path) {
         c.group = r.string(n, path);
         if (c.group.empty()) r.fail(n, path + " must not be empty");
       }},
      {"offset_reset",
       [](Reader& r, C& c, const toml::node& n, const std::string& path) {
         c.offset_reset = r.one_of_strings(n, path, kOffsetResets);
       }},
      {"mqtt_topic",
       [](Reader& r, C& c, const toml::node& n, const std::string& path) {
         kafka::Template t = kafka_template(r, n, path, Dir::ToMqtt);
         if (t.constant() && !mqtt::valid_topic_name(t.literal())) {
           r.fail(n, path + " = " + quoted(t.text()) +
                         " is not an MQTT topic name (no wildcards, not empty)");
         }
         c.mqtt_topic = t.text();
       }},
      int_field("qos", &C::qos, 0, 2),
      bool_field("retain", &C::retain),
      bool_field("user_properties", &C::user_properties),
      {"codec", [](Reader& r, C& c, const toml::node& n,
                   const std::string& path) { c.codec = r.one_of_strings(n, path, kCodecs); }},
  };
  return fields;
}

// A table of librdkafka properties; each is tried on a scratch configuration so that a typo
// fails at start with its line, not when the bridge connects.
void read_kafka_properties(Reader& r, PropertyList& out, const toml::node& node,
                           const std::string& path) {
  const toml::table& table = r.table(node, path);
  std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> scratch(rd_kafka_conf_new(),
                                                                             rd_kafka_conf_destroy);
  for (auto&& [key, value] : table) {
    std::string name(key.str());
    std::string text;
    if (const auto* s = value.as_string()) {
      text = s->get();
    } else if (const auto* i = value.as_integer()) {
      text = std::to_string(i->get());
    } else if (const auto* b = value.as_boolean()) {
      text = b->get() ? "true" : "false";
    } else if (const auto* f = value.as_floating_point()) {
      text = std::to_string(f->get());
    } else if (value.is_table()) {
      r.fail(value, path + "." + name +
                        " is a table: quote property names that contain dots, as "
                        "in \"linger.ms\" = 5");
    } else {
      r.fail(value, path + "." + name + " must be a string, number or boolean");
    }
    char error[256];
    if (rd_kafka_conf_set(scratch.get(), name.c_str(), text.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      r.fail(line_of(key.source()), path + "." + name + ": " + error);
    }
    out.emplace_back(std::move(name), std::move(text));
  }
}

void read_produce_rules(Reader& r, Document& d, const toml::node& node) {
  const auto* array = node.as_array();
  if (array == nullptr) r.fail(node, "kafka.produce must be an array of tables: [[kafka.produce]]");
  for (const toml::node& item : *array) {
    std::string path = "kafka.produce[" + std::to_string(d.config.kafka.produce.size()) + "]";
    const toml::table& table = r.table(item, path);
    PendingProduce p;
    p.rule.line = line_of(table.source());
    r.read_table<PendingProduce>(p, table, path, produce_fields());
    if (!p.has_filter) r.fail(p.rule.line, path + " needs a filter, e.g. filter = \"sensors/#\"");
    if (!p.has_topic) r.fail(p.rule.line, path + " needs a topic, e.g. topic = \"sensors\"");
    d.config.kafka.produce.push_back(std::move(p.rule));
  }
}

void read_consume_rules(Reader& r, Document& d, const toml::node& node) {
  const auto* array = node.as_array();
  if (array == nullptr) r.fail(node, "kafka.consume must be an array of tables: [[kafka.consume]]");
  for (const toml::node& item : *array) {
    std::string path = "kafka.consume[" + std::to_string(d.config.kafka.consume.size()) + "]";
    const toml::table& table = r.table(item, path);
    KafkaConsumeRule c;
    c.line = line_of(table.source());
    r.read_table<KafkaConsumeRule>(c, table, path, consume_fields());
    if (c.topics.empty()) r.fail(c.line, path + " needs topics, e.g. topics = [\"commands\"]");
    d.config.kafka.consume.push_back(std::move(c));
  }
}

template <typename M>
Field<Document> kafka_int(std::string_view name, M KafkaSettings::*member, int64_t lo, int64_t hi) {
  return {name,
          [member, lo, hi](Reader& r, Document& d, const toml::node& n, const std::string& path) {
            d.config.kafka.*member = static_cast<M>(r.integer(n, path, lo, hi));
          }};
}

const std::vector<Field<Document>>& kafka_fields() {
  using D = Document;
  using K = KafkaSettings;
  static const std::vector<Field<D>> fields = {
      {"bootstrap",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.kafka.bootstrap = r.string(n, path);
         if (d.config.kafka.bootstrap.empty()) r.fail(n, path + " must not be empty");
       }},
      {"mock", [](Reader& r, D& d, const toml::node& n,
                  const std::string& path) { d.config.kafka.mock = r.boolean(n, path); }},
      kafka_int("mock_brokers", &K::mock_brokers, 1, 16),
      {"schema_registry",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         const std::string text = r.string(n, path);
         std::string url = text;
         while (url.ends_with("/"))
           url.pop_back();
         const size_t scheme = url.starts_with("https://") ? 8 : url.starts_with("http://") ? 7 : 0;
         if (scheme == 0 || url.size() == scheme) {
           r.fail(n,
                  path + " = " + quoted(text) + " must be an http:// or https:// URL with a host");
         }
         d.config.kafka.schema_registry = url;
       }},
      kafka_int("schema_registry_timeout_ms", &K::schema_registry_timeout_ms, 100, 600000),
      kafka_int("buffer_max_messages", &K::buffer_max_messages, 1, max_of<uint32_t>()),
      kafka_int("buffer_max_bytes", &K::buffer_max_bytes, 1024,
                std::numeric_limits<int64_t>::max()),
      {"properties",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         read_kafka_properties(r, d.config.kafka.properties, n, path);
       }},
      {"producer_properties",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         read_kafka_properties(r, d.config.kafka.producer_properties, n, path);
       }},
      {"consumer_properties",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         read_kafka_properties(r, d.config.kafka.consumer_properties, n, path);
       }},
      {"produce", [](Reader& r, D& d, const toml::node& n,
                     const std::string&) { read_produce_rules(r, d, n); }},
      {"consume", [](Reader& r, D& d, const toml::node& n,
                     const std::string&) { read_consume_rules(r, d, n); }},
  };
  return fields;
}

// Checks across [kafka] keys, once the whole section is read.
void finish_kafka(Reader& r, const Document& doc) {
  const KafkaSettings& k = doc.config.kafka;
  if (!k.enabled()) return;
  int first_rule = !k.produce.empty() ? k.produce.front().line : k.consume.front().line;
  if (k.bootstrap.empty() && !k.mock) {
    r.fail(first_rule,
           "Kafka rules need kafka.bootstrap = \"host:9092\" (or kafka.mock = true to try them "
           "against a built-in mock cluster)");
  }
  for (size_t i = 0; i < k.consume.size(); ++i) {
    if (k.consume[i].codec == "avro-confluent" && k.schema_registry.empty()) {
      r.fail(k.consume[i].line, "kafka.consume[" + std::to_string(i) +
                                    "] uses codec \"avro-confluent\": set kafka.schema_registry "
                                    "to the registry's URL");
    }
  }
}

// A top-level [section] read with its own field list.
template <typename S>
Field<Document> section(std::string_view name, const std::vector<Field<S>>& (*fields)(),
                        S& (*target)(Document&)) {
  return {name,
          [fields, target](Reader& r, Document& d, const toml::node& n, const std::string& path) {
            r.read_table<S>(target(d), r.table(n, path), path, fields());
          }};
}

Document& self(Document& d) {
  return d;
}
MqttSettings& mqtt_of(Document& d) {
  return d.config.mqtt;
}
Limits& limits_of(Document& d) {
  return d.config.limits;
}

const std::vector<Field<Document>>& auth_fields() {
  using D = Document;
  static const std::vector<Field<D>> fields = {
      {"password_file",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.auth.password_file = r.readable_file(n, path);
       }},
      {"acl_file",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.auth.acl_file = r.readable_file(n, path);
       }},
  };
  return fields;
}

const std::vector<Field<Document>>& top_fields() {
  using D = Document;
  static const std::vector<Field<D>> fields = {
      {"threads",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.threads = static_cast<unsigned>(r.integer(n, path, 0, kMaxThreads));
       }},
      {"log_level",
       [](Reader& r, D& d, const toml::node& n, const std::string& path) {
         d.config.log_level = r.one_of_strings(n, path, kLogLevels);
       }},
      {"listeners",
       [](Reader& r, D& d, const toml::node& n, const std::string&) { read_listeners(r, d, n); }},
      section<D>("http", http_fields, self),
      section<D>("storage", storage_fields, self),
      section<D>("sys", sys_fields, self),
      section<D>("auth", auth_fields, self),
      section<D>("kafka", kafka_fields, self),
      section<MqttSettings>("mqtt", mqtt_fields, mqtt_of),
      section<Limits>("limits", limits_fields, limits_of),
  };
  return fields;
}

// Puts the listeners in file order and checks that no two binds (HTTP included) collide.
void finish(Reader& r, Document& doc) {
  // An empty [listeners] declares nothing, so the default stays: a broker without an MQTT
  // listener is never what was meant.
  std::vector<BindUse> uses;
  if (doc.listeners.empty()) {
    for (const Listener& l : doc.config.listeners) {
      uses.push_back({"listeners." + l.name + ".bind", l.bind, 0});
    }
  } else {
    // toml++ orders table keys by name; the file's order is the one users expect in logs.
    std::stable_sort(doc.listeners.begin(), doc.listeners.end(),
                     [](const PendingListener& a, const PendingListener& b) {
                       return std::pair(a.table_pos.line, a.table_pos.column) <
                              std::pair(b.table_pos.line, b.table_pos.column);
                     });
    doc.config.listeners.clear();
    for (const PendingListener& p : doc.listeners) {
      doc.config.listeners.push_back(p.listener);
      uses.push_back({"listeners." + p.listener.name + ".bind", p.listener.bind, p.bind_line});
    }
  }
  if (doc.config.http_enabled) uses.push_back({"http.bind", doc.config.http, doc.http_bind_line});
  auto [reason, line] = find_bind_collision(uses);
  if (!reason.empty()) r.fail(line, reason);
  finish_kafka(r, doc);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Endpoint parse_endpoint(const std::string& text) {
  if (text.empty()) throw std::invalid_argument("empty address, expected host:port");
  std::string host;
  std::string port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) throw std::invalid_argument("missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("expected :port after ']', e.g. [::1]:1883");
    }
    port = text.substr(close + 2);
    if (!is_ipv6_literal(host)) {
      throw std::invalid_argument(quoted(host) + " is not an IPv6 address");
    }
  } else {
    size_t colon = text.find(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("missing :port, e.g. 127.0.0.1:1883 or :1883");
    }
    if (text.find(':', colon + 1) != std::string::npos) {
      throw std::invalid_argument("an IPv6 address needs brackets, e.g. [::1]:1883");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty()) {
      host = "0.0.0.0";  // ":1883" listens on every IPv4 interface
    } else if (host.find_first_not_of("0123456789.") == std::string::npos) {
      if (!is_ipv4_literal(host)) {
        throw std::invalid_argument(quoted(host) + " is not an IPv4 address");
      }
    } else if (!is_host_name(host)) {
      throw std::invalid_argument(quoted(host) + " is not a valid host name or address");
    }
  }
  if (port.empty()) throw std::invalid_argument("missing port number after ':'");
  // Digits only: no sign, no spaces, no hex; at most 5 digits so the value cannot overflow.
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    throw std::invalid_argument("port " + quoted(port) + " is not a number in 0..65535");
  }
  return Endpoint{host, static_cast<uint16_t>(std::stoul(port))};
}

std::string to_string(const Endpoint& e) {
  if (e.host.find(':') != std::string::npos) {
    return "[" + e.host + "]:" + std::to_string(e.port);
  }
  return e.host + ":" + std::to_string(e.port);
}

ConfigError::ConfigError(const std::string& file, int line, const std::string& reason)
    : std::runtime_error(file + ":" + std::to_string(line) + ": " + reason),
      file_(file),
      line_(line),
      reason_(reason) {}

Config defaults() {
  Config config;
  config.listeners.push_back(default_listener());
  return config;
}

namespace {

// A code point toml++ 3.3 cannot read safely, and where it is.
struct UnsafeCodePoint {
  int line = 0;  // 0: none
  char32_t code_point = 0;
};

// True for the code points whose whitespace test in toml++ 3.3 (Debian 12) reaches
// __builtin_unreachable(): is_non_ascii_horizontal_whitespace's switch has no case for them.
// This is that function's own arithmetic (unicode_autogenerated.h); it comes to U+00A1..U+0499,
// U+2C5E..U+2FFF, U+3001..U+3057 and U+FB26..U+FEFE.
bool toml_cannot_classify(char32_t c) {
  if (c <= 0xA0 || c >= 0xFEFF || c == 0x3000) return false;  // answered before the switch
  const uint64_t child = (c - 0xA0) / 0x3FA;
  if ((1ull << child) & 0x7FFFFFFFFFFFF75Eull) return false;
  return child != 5 && child != 7;  // the switch's two cases
}

// The parser asks that question outside strings, after backslashes, and while reading ahead
// for error messages (three long fuzz_config runs found three such paths), so those code points
// are refused wherever they are; in a string, the escape \uXXXX says the same thing safely.
UnsafeCodePoint find_unsafe_code_point(std::string_view text) {
  int line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte == '\n') ++line;
    if (byte < 0xC0) continue;  // ASCII, or not the start of a sequence
    const size_t length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2;
    if (i + length > text.size()) break;  // truncated: the parser reports it
    char32_t cp = byte & (0x7F >> length);
    for (size_t k = 1; k < length; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    if (toml_cannot_classify(cp)) return {line, cp};
  }
  return {};
}

}  // namespace

Config load_string(const std::string& text, const std::string& path) {
  if (UnsafeCodePoint unsafe = find_unsafe_code_point(text); unsafe.line != 0) {
    throw ConfigError(path, unsafe.line,
                      fmt::format("character U+{:04X} cannot be read safely by this build's TOML "
                                  "parser (toml++ 3.3); in a string, write it as \\u{:04X}",
                                  static_cast<uint32_t>(unsafe.code_point),
                                  static_cast<uint32_t>(unsafe.code_point)));
  }
  toml::table root;
#if TOML_EXCEPTIONS
  try {
    root = toml::parse(std::string_view(text), std::string_view(path));
  } catch (const toml::parse_error& e) {
    throw ConfigError(path, line_of(e.source()), std::string(e.description()));
  }
#else
  toml::parse_result result = toml::parse(std::string_view(text), std::string_view(path));
  if (!result) {
    throw ConfigError(path, line_of(result.error().source()),
                      std::string(result.error().description()));
  }
  root = std::move(result).table();
#endif

  Document doc{defaults()};
  doc.config.source = path;
  Reader reader(path);
  reader.read_table<Document>(doc, root, "", top_fields());
  finish(reader, doc);
  return std::move(doc.config);
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
      next.http_enabled = false;
    } else {
      next.http = parse_bind("--http", *overrides.http);
      next.http_enabled = true;  // asking for an address means wanting the server
    }
  }
  if (overrides.data_dir) {
    if (overrides.data_dir->empty()) fail("--data must not be empty");
    next.data_dir = *overrides.data_dir;
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
  auto [reason, line] = find_bind_collision(bind_uses(next));
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
  if (live.http != fresh.http || live.http_enabled != fresh.http_enabled) {
    need_restart.push_back("http");
  }
  if (live.data_dir != fresh.data_dir) need_restart.push_back("storage.dir");
  if (live.durability != fresh.durability) need_restart.push_back("storage.durability");
  if (live.threads != fresh.threads) need_restart.push_back("threads");
  // Where rules are written in the file is no change.
  auto without_lines = [](KafkaSettings k) {
    for (auto& rule : k.produce)
      rule.line = 0;
    for (auto& rule : k.consume)
      rule.line = 0;
    return k;
  };
  if (without_lines(live.kafka) != without_lines(fresh.kafka)) need_restart.push_back("kafka");

  live.log_level = fresh.log_level;
  live.sys_interval_s = fresh.sys_interval_s;
  live.mqtt = fresh.mqtt;
  live.limits = fresh.limits;
  live.auth = fresh.auth;  // password and ACL files are read again by the caller
  // Certificates are read again for new connections; the listener's shape needs a restart.
  if (shape(live.listeners) == shape(fresh.listeners)) live.listeners = fresh.listeners;
  live.http_settings = fresh.http_settings;  // limits and tokens apply to new requests
  return need_restart;
}

}  // namespace starling::config
