#include "config/webhook_settings.h"

#include <set>

#include "config/config.h"
#include "config/reader.h"
#include "mqtt/topic.h"

namespace starling::config {

namespace {

std::string read_name(const Reader& r, const toml::node& n, const std::string& path) {
  std::string name = r.string(n, path);
  const bool ok = !name.empty() && name.size() <= 64 &&
                  name.find_first_not_of(
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_-") == std::string::npos;
  if (!ok) r.fail(n, path + " = " + quoted(name) + ": use 1 to 64 letters, digits, '_' or '-'");
  return name;
}

std::vector<std::string> read_events(const Reader& r, const toml::node& n,
                                     const std::string& path) {
  return r.string_array(n, path, false, [&](const toml::node& item, const std::string& value) {
    if (!one_of(value, kWebhookEvents)) {
      r.fail(item, path + ": " + quoted(value) + " is not an event; the events are " +
                       join(kWebhookEvents));
    }
  });
}

std::vector<std::string> read_filters(const Reader& r, const toml::node& n,
                                      const std::string& path) {
  return r.string_array(n, path, true, [&](const toml::node& item, const std::string& value) {
    if (!mqtt::valid_topic_filter(value)) {
      r.fail(item, path + ": " + quoted(value) + " is not a topic filter");
    }
  });
}

const std::vector<Field<WebhookSettings>>& webhook_fields() {
  using W = WebhookSettings;
  static const std::vector<Field<W>> fields = {
      field("name", &W::name, read_name),
      url_field("url", &W::url),
      field("events", &W::events, read_events),
      field("topics", &W::topics, read_filters),
      integer_field("batch_max", &W::batch_max, 1, 100000),
      integer_field("batch_delay_ms", &W::batch_delay_ms, 0, 60000),
      integer_field("queue_max", &W::queue_max, 1, 100000000),
      integer_field("timeout_ms", &W::timeout_ms, 10, 600000),
      integer_field("retry_min_ms", &W::retry_min_ms, 10, 3600000),
      integer_field("retry_max_ms", &W::retry_max_ms, 10, 3600000),
      integer_field("pool_size", &W::pool_size, 1, 64),
      file_field("ca_file", &W::ca_file),
      field("headers", &W::headers, &Reader::header_lines),
  };
  return fields;
}

std::vector<WebhookSettings> read_webhooks(const Reader& r, const toml::node& node,
                                           const std::string& path) {
  std::vector<WebhookSettings> webhooks;
  std::set<std::string> names;
  r.table_array(node, path, [&](const toml::table& table, const std::string& hook_path) {
    WebhookSettings w;
    w.line.value = line_of(table.source());
    r.read_table<WebhookSettings>(w, table, hook_path, webhook_fields());
    const int line = w.line.value;
    if (w.name.empty()) r.fail(line, hook_path + " needs a name, e.g. name = \"events\"");
    if (!names.insert(w.name).second) {
      r.fail(line, hook_path + ": a second webhook named " + quoted(w.name));
    }
    if (w.url.empty()) r.fail(line, hook_path + " needs a url");
    if (w.events.empty()) {
      r.fail(line, hook_path + " needs events, e.g. events = [\"client.connected\"]");
    }
    if (w.retry_min_ms > w.retry_max_ms) {
      r.fail(line, hook_path + ": retry_min_ms is above retry_max_ms");
    }
    if (w.topics.empty()) w.topics.push_back("#");
    webhooks.push_back(std::move(w));
  });
  return webhooks;
}

}  // namespace

Field<Config> webhooks_section() {
  return field("webhooks", &Config::webhooks, read_webhooks);
}

}  // namespace starling::config
