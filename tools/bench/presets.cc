#include "presets.h"

#include <sstream>

namespace starling::bench {

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = {
      {"fanout-qos2",
       "100 publishers at 1 msg/s each into 2000 subscribers of one topic, QoS 2 both ways, "
       "64-byte payload: 200k deliveries/s with the full QoS 2 handshake",
       "fanout --publishers 100 --subscribers 2000 --qos 2 --payload 64 --rate 1 --warmup 5 "
       "--duration 20 --drain 5 --connect-timeout 60"},
      {"fanin-sweep",
       "1, 8, 64, 512, 4096 and 8192 publishers into one wildcard subscriber, QoS 0, "
       "unlimited rate with 1000 messages in flight in total (per publisher: 1000 / P, at "
       "least 1)",
       "fanin --publishers 1,8,64,512,4096,8192 --total-window 1000 --qos 0 --payload 64 "
       "--warmup 2 --duration 5 --drain 2 --connect-timeout 60"},
      {"pairs-qos0",
       "10 publisher/subscriber pairs, QoS 0, unlimited rate with a window of 1000 messages "
       "per pair: the broker's QoS 0 throughput",
       "pairs --pairs 10 --qos 0 --payload 64 --window 1000 --warmup 2 --duration 10 --drain 2"},
      {"pairs-qos1", "10 pairs, QoS 1, unlimited rate with a window of 1000 messages per pair",
       "pairs --pairs 10 --qos 1 --payload 64 --window 1000 --warmup 2 --duration 10 --drain 5"},
      {"fanout-qos0",
       "1 publisher into 100 subscribers of one topic, QoS 0, unlimited rate with a window of "
       "100 messages (100 x 100 deliveries in flight)",
       "fanout --publishers 1 --subscribers 100 --qos 0 --payload 64 --window 100 --warmup 2 "
       "--duration 10 --drain 2"},
      {"shared-qos1",
       "10 publishers at 1000 msg/s each into 2 shared-subscription groups of 4 members, QoS 1",
       "shared --publishers 10 --groups 2 --members 4 --qos 1 --payload 64 --rate 1000 "
       "--warmup 2 --duration 10 --drain 5"},
      {"connections",
       "10000 idle connections, opened as fast as the broker accepts them (256 handshakes in "
       "flight): connect rate, CONNACK latency and broker memory per connection",
       "connections --connections 10000 --max-connecting 256 --warmup 0 --duration 10 "
       "--drain 10 --connect-timeout 120"},
      {"connections-paced",
       "10000 connections opened at 6000 a second, a pace every broker compared here keeps: "
       "CONNACK latency under the same offered load (in `connections` the faster broker is "
       "offered more)",
       "connections --connections 10000 --connect-rate 6000 --max-connecting 256 --warmup 0 "
       "--duration 5 --drain 10 --connect-timeout 120"},
      {"memory",
       "18000 idle connections opened at 3000 a second (this machine's fd limit is 20,000): "
       "broker RSS before connecting, holding them, and per connection (--tls: over TLS)",
       "connections --connections 18000 --connect-rate 3000 --max-connecting 256 --warmup 0 "
       "--duration 5 --drain 10 --connect-timeout 120"},
      {"retained-storm",
       "10000 retained messages; 20 subscribers each subscribe to all of them with a wildcard, "
       "receive them, unsubscribe, and again, QoS 0",
       "retained --retained 10000 --subscribers 20 --qos 0 --payload 64 --warmup 2 --duration 10 "
       "--drain 10 --connect-timeout 60"},
  };
  return all;
}

const Preset* find_preset(std::string_view name) {
  for (const Preset& p : presets()) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

std::vector<std::string> preset_args(const Preset& p) {
  std::vector<std::string> out;
  std::istringstream in(p.args);
  for (std::string word; in >> word;)
    out.push_back(word);
  return out;
}

}  // namespace starling::bench
