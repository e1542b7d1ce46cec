// What the broker (and the HTTP API through it) sees of the bridges to other MQTT brokers
// (src/bridge): their state for GET /api/v1/bridges, /readyz and /metrics. The bridges
// themselves are clients of the broker like any other (a session "$bridge/<name>" and the
// front door); this is only their window.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "broker/external_bridge.h"

namespace starling::broker {

struct MqttBridgeInfo {
  std::string name;
  std::string state;     // "connecting", "connected", "backoff"
  std::string remote;    // the address in use or last tried, "host:port"
  std::string protocol;  // "3.1.1" or "5.0"
  bool tls = false;
  int64_t connected_since_ms = 0;  // Unix time; 0 while not connected
  uint64_t queued = 0;             // outgoing messages waiting (in memory and in the store)
  uint64_t inflight = 0;           // outgoing QoS 1/2 messages sent and not acknowledged
  uint64_t sent = 0;               // messages sent to the remote since start
  uint64_t received = 0;           // messages received from it since start
  uint64_t connects = 0;           // connections that reached CONNACK since start
  uint64_t connect_failures = 0;   // attempts that did not
  std::vector<std::pair<std::string, uint64_t>> failures_by_reason;  // "connect", "tls", ...
  // Messages no rule matched (of a rule removed while the remote or the session still had
  // its subscription): acknowledged and dropped.
  uint64_t unmatched = 0;
  std::string last_error;  // "" when none since the last connection came up
};

class MqttBridges {
 public:
  virtual ~MqttBridges() = default;
  virtual std::vector<MqttBridgeInfo> list() const = 0;
  // For /readyz: reported, but a remote that is away does not make this broker unready.
  virtual BridgeStatus status() const = 0;
  virtual void render_metrics(std::string& out) const = 0;
};

}  // namespace starling::broker
