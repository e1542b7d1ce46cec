#include "stats.h"

#include <iterator>

namespace starling::bench {

// Moves the per-publisher and per-stream results out of o (they can be large).
void ThreadStats::merge_counters(ThreadStats& o) {
  sent_window += o.sent_window;
  sent_total += o.sent_total;
  received_window += o.received_window;
  received_total += o.received_total;
  duplicates += o.duplicates;
  out_of_order += o.out_of_order;
  misrouted += o.misrouted;
  bad_payload += o.bad_payload;
  window_stalls += o.window_stalls;
  rejected += o.rejected;
  unacked += o.unacked;
  behind_schedule += o.behind_schedule;
  latency.merge(o.latency);
  latency_from_schedule.merge(o.latency_from_schedule);
  publishers.insert(publishers.end(), o.publishers.begin(), o.publishers.end());
  streams.insert(streams.end(), std::make_move_iterator(o.streams.begin()),
                 std::make_move_iterator(o.streams.end()));
  o.streams.clear();
  connect_latency.merge(o.connect_latency);
  connected += o.connected;
  if (o.first_connect_ns != 0 && (first_connect_ns == 0 || o.first_connect_ns < first_connect_ns)) {
    first_connect_ns = o.first_connect_ns;
  }
  last_ready_ns = std::max(last_ready_ns, o.last_ready_ns);
  if (tls.empty()) tls = o.tls;
}

}  // namespace starling::bench
