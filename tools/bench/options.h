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
  // Subscribers connect here instead (0: --port): one cluster node publishes, another
  // delivers, and the bench measures the way between them.
  uint16_t sub_port = 0;
  unsigned threads = 0;  // 0: std::thread::hardware_concurrency()
  mqtt::Version version = mqtt::Version::V5;
  uint8_t qos = 0;        // of publishes
  uint8_t sub_qos = 0;    // of subscriptions (--sub-qos; defaults to --qos)
  uint32_t payload = 64;  // bytes, header included
  double duration_s = 10;
  double warmup_s = 2;
  double drain_s = 2;
  uint64_t rate = 0;       // messages per second per publisher; 0: as fast as the window allows
  uint32_t window = 1000;  // unlimited mode: messages per publisher sent but not yet received
  uint64_t count = 0;      // messages per publisher, then it stops; 0: until the window ends
  // QoS 1/2 publishes per publisher awaiting PUBACK/PUBCOMP; 0: as many as the broker's
  // Receive Maximum allows (65535 with 3.1.1, which has no way to announce a limit).
  uint32_t max_inflight = 0;
  // Window full without progress this long: count a stall (and reopen the window at QoS 0).
  double stall_timeout_s = 1;
  double connect_timeout_s = 10;
  double connect_rate = 0;        // new connections per second over all threads; 0: unpaced
  uint32_t max_connecting = 256;  // connects in progress at once, over all threads; 0: no cap
  uint16_t keep_alive = 60;
  bool tls = false;    // connect with TLS (the broker's TLS listener as --port)
  std::string tls_ca;  // verify the broker's certificate against these; empty: no
  std::string tls_min_version = "1.2";
  uint32_t session_expiry = 0;  // 5.0 Session Expiry Interval of every client (persistent)
  std::string topic_prefix = "bench";
  // Client ids are "<prefix>-conn-N" and the like; "" = "sbench-<pid>" (unique per run). A
  // fixed prefix makes a second run reconnect the same ids (an auth cache's hits).
  std::string client_id_prefix;
  std::string username;  // in every CONNECT when not empty
  std::string password;  // the same (needs a username)
  int broker_pid = 0;    // sample this process's CPU and RSS during the window
  std::string preset;    // for the report: the preset these options came from
  bool json = false;
  bool quiet = false;
};

}  // namespace starling::bench
