// [cluster]: Starling nodes that share one Kafka cluster as their backbone (see
// docs/cluster.md). Without the section, no Kafka is touched for clustering.
#pragma once

#include <cstdint>
#include <string>

namespace starling::config {

struct ClusterSettings {
  std::string name;     // the cluster's name: its Kafka topics are starling.<name>.*
  std::string node_id;  // this node's id, unique in the cluster; stable across restarts
  // When a QoS 1/2 publish forwarded to other nodes is acknowledged: "async" once the local
  // store has it and the forwards are in the durable outbox; "kafka" once Kafka acknowledged
  // every forward.
  std::string ack = "async";
  uint32_t heartbeat_ms = 1000;     // how often a node says it is alive
  uint32_t node_timeout_ms = 5000;  // a node silent this long is shown as down
  uint32_t inbox_partitions = 4;    // partitions of inbox.<node> when a node creates it
  bool enabled() const { return !name.empty(); }
  bool operator==(const ClusterSettings&) const = default;
};

struct Config;
template <typename S>
struct Field;
class Reader;
// The [cluster] section, for the loader (config.cc).
Field<Config> cluster_section();
// Checks across [cluster] and [kafka], once the whole file is read. line: the section's line.
void check_cluster(const Reader& r, const Config& config, int line);

}  // namespace starling::config
