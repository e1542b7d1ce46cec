#include "config/listeners.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

constexpr std::string_view kListenerProtocols[] = {"mqtt", "ws"};
constexpr std::string_view kTlsVersions[] = {"1.2", "1.3"};
constexpr uint16_t kDefaultMqttPort = 1883;

std::string ws_path(const Reader& r, const toml::node& n, const std::string& path) {
  std::string value = r.string(n, path);
  if (value.empty() || value[0] != '/' || value.find_first_of(" ?#") != std::string::npos) {
    r.fail(n, path + " must be a path starting with '/', without spaces, '?' or '#'");
  }
  return value;
}

const std::vector<Field<Listener>>& listener_fields() {
  using L = Listener;
  static const std::vector<Field<L>> fields = {
      field("bind", &L::bind, &Reader::bind),
      one_of_field("protocol", &L::protocol, kListenerProtocols),
      field("ws_path", &L::ws_path, ws_path),
      field("ws_allowed_origins", &L::ws_allowed_origins,
            [](const Reader& r, const toml::node& n, const std::string& path) {
              return r.string_array(n, path, false);
            }),
      // Read at start and on SIGHUP: checked now, so a typo fails at load with the line instead
      // of at the first TLS handshake.
      file_field("tls_cert", &L::tls_cert),
      file_field("tls_key", &L::tls_key),
      file_field("tls_ca", &L::tls_ca),
      bool_field("require_client_cert", &L::require_client_cert),
      bool_field("username_from_cert", &L::username_from_cert),
      one_of_field("tls_min_version", &L::tls_min_version, kTlsVersions),
      string_field("tls_ciphers", &L::tls_ciphers),
      string_field("tls_ciphersuites", &L::tls_ciphersuites),
      field("allow_anonymous", &L::allow_anonymous, &Reader::boolean),
      bool_field("proxy_protocol", &L::proxy_protocol),
      integer_field("max_connections", &L::max_connections),
  };
  return fields;
}

// TLS settings only make sense together: say which one is missing where the listener is.
void check_listener(const Reader& r, const Listener& l, const toml::table& table,
                    const std::string& path) {
  const int table_line = l.line.value;
  if (l.tls_cert.empty() != l.tls_key.empty()) {
    r.fail(table_line, path + ": tls_cert and tls_key go together (set both or neither)");
  }
  if (!l.tls()) {
    const char* tls_only[] = {"tls_ca",          "require_client_cert", "username_from_cert",
                              "tls_min_version", "tls_ciphers",         "tls_ciphersuites"};
    for (const char* key : tls_only) {
      if (table.contains(key)) {
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
      if (table.contains(key)) r.fail(table_line, path + "." + key + " needs protocol = \"ws\"");
    }
  }
}

// The listeners in the file's order: toml++ hands table keys over sorted by name, but the
// file's order is the one users expect in logs.
std::vector<Listener> read_listeners(const Reader& r, const toml::node& node,
                                     const std::string& path) {
  std::vector<std::pair<toml::source_position, Listener>> read;
  r.named_tables(node, path, "listener", "mqtt",
                 [&r, &read](const std::string& name, const toml::table& table,
                             const std::string& listener_path) {
                   Listener l{name, Endpoint{}};
                   l.line.value = line_of(table.source());
                   r.read_table<Listener>(l, table, listener_path, listener_fields());
                   if (!table.contains("bind")) {
                     r.fail(l.line.value, listener_path +
                                              " needs a bind address, e.g. bind = "
                                              "\"127.0.0.1:1883\"");
                   }
                   check_listener(r, l, table, listener_path);
                   read.emplace_back(table.source().begin, std::move(l));
                 });
  std::stable_sort(read.begin(), read.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.line, a.first.column) < std::pair(b.first.line, b.first.column);
  });
  std::vector<Listener> listeners;
  for (auto& [position, l] : read)
    listeners.push_back(std::move(l));
  return listeners;
}

}  // namespace

Listener default_listener() {
  return Listener{"mqtt", Endpoint{"127.0.0.1", kDefaultMqttPort}};
}

Field<Config> listeners_section() {
  return {"listeners",
          [](const Reader& r, Config& c, const toml::node& n, const std::string& path) {
            std::vector<Listener> listeners = read_listeners(r, n, path);
            // An empty [listeners] declares nothing, so the default stays: a broker without an
            // MQTT listener is never what was meant.
            if (!listeners.empty()) c.listeners = std::move(listeners);
          }};
}

}  // namespace starling::config
