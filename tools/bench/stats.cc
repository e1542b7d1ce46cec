#include "stats.h"

namespace starling::bench {

void ThreadStats::merge_counters(const ThreadStats& o) {
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
  latency.merge(o.latency);
  publishers.insert(publishers.end(), o.publishers.begin(), o.publishers.end());
  streams.insert(streams.end(), o.streams.begin(), o.streams.end());
}

}  // namespace starling::bench
