// Options every scenario shares. main.cc fills them from the command line; scenarios add their
// own (e.g. --pairs) on top.
#pragma once

#include <cstdint>
#include <string>

#include "mqtt/packet.h"

namespace starling::bench {

struct CommonOptions {
  std::string host = "127.0.0.1";  // loopback only: the bench compares send and receive clocks
  uint16_t port = 1883;
  unsigned threads = 0;  // 0: std::thread::hardware_concurrency()
  mqtt::Version version = mqtt::Version::V5;
  uint8_t qos = 0;
  uint32_t payload = 64;  // bytes, header included
  double duration_s = 10;
  double warmup_s = 2;
  double drain_s = 2;
  uint64_t rate = 0;       // messages per second per publisher; 0: as fast as the window allows
  uint32_t window = 1000;  // unlimited mode: messages per publisher sent but not yet received
  // QoS 1/2 publishes per publisher awaiting PUBACK/PUBCOMP; 0: as many as the broker's
  // Receive Maximum allows (65535 with 3.1.1, which has no way to announce a limit).
  uint32_t max_inflight = 0;
  // Window full without progress this long: count a stall (and reopen the window at QoS 0).
  double stall_timeout_s = 1;
  double connect_timeout_s = 10;
  uint16_t keep_alive = 60;
  int broker_pid = 0;  // sample this process's CPU and RSS during the window
  bool json = false;
  bool quiet = false;
};

}  // namespace starling::bench
