#include "config/cluster_settings.h"

#include <string_view>

#include "config/config.h"
#include "config/reader.h"

namespace starling::config {

namespace {

constexpr std::string_view kAckModes[] = {"async", "kafka"};

// Names become parts of Kafka topic names (starling.<name>.inbox.<node_id>): Kafka allows
// letters, digits, '.', '_' and '-' in at most 249 characters.
std::string kafka_safe_name(const Reader& r, const toml::node& n, const std::string& path) {
  std::string value = r.string(n, path);
  if (value.empty() || value.size() > 100) r.fail(n, path + " must be 1 to 100 characters");
  for (char c : value) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) {
      r.fail(n, path + " " + quoted(value) +
                    ": only letters, digits, '_' and '-' (it is part of Kafka topic names)");
    }
  }
  return value;
}

const std::vector<Field<ClusterSettings>>& cluster_fields() {
  using C = ClusterSettings;
  static const std::vector<Field<C>> fields = {
      field("name", &C::name, kafka_safe_name),
      field("node_id", &C::node_id, kafka_safe_name),
      one_of_field("ack", &C::ack, kAckModes),
      integer_field("heartbeat_ms", &C::heartbeat_ms, 100, 60000),
      integer_field("node_timeout_ms", &C::node_timeout_ms, 300, 600000),
      integer_field("inbox_partitions", &C::inbox_partitions, 1, 1000),
  };
  return fields;
}

}  // namespace

Field<Config> cluster_section() {
  return section("cluster", &Config::cluster, cluster_fields());
}

void check_cluster(const Reader& r, const Config& config, int line) {
  const ClusterSettings& c = config.cluster;
  // No [cluster] section: not a cluster. A section without name is a mistake, not a no.
  if (c.name.empty() && c.node_id.empty() && line == 0) return;
  if (c.name.empty()) r.fail(line, "[cluster] needs name = \"...\" (the same on every node)");
  if (c.node_id.empty()) {
    r.fail(line, "[cluster] needs node_id = \"...\" (unique per node, stable across restarts)");
  }
  if (config.kafka.bootstrap.empty() && !config.kafka.mock) {
    r.fail(line,
           "[cluster] needs kafka.bootstrap = \"host:9092\" (the cluster's backbone), or "
           "kafka.mock = true for a single node trying it out");
  }
  if (c.node_timeout_ms < 2 * c.heartbeat_ms) {
    r.fail(line, "cluster.node_timeout_ms must be at least twice cluster.heartbeat_ms");
  }
}

}  // namespace starling::config
