// What every scenario measures: the payload header that makes each message self-describing,
// per-stream sequence tracking (loss, duplicates, reordering) and the per-thread counters that
// the runner merges once the loops have stopped. Nothing here is shared between threads while
// a run is in progress.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "histogram.h"

namespace starling::bench {

// First bytes of every bench payload, little-endian (the sender and receiver are one machine):
// publisher index (u32), sequence number (u64), send time (u64, CLOCK_MONOTONIC ns) and due time
// (u64, CLOCK_MONOTONIC ns). The due time is when the message's turn came: in rate mode its slot
// in the publisher's schedule (earlier than the send time when the publisher fell behind, e.g.
// waiting for the broker's acknowledgements), otherwise the send time. The rest of the payload
// is padding.
struct PayloadHeader {
  uint32_t publisher = 0;
  uint64_t seq = 0;
  uint64_t sent_ns = 0;
  uint64_t due_ns = 0;
};
inline constexpr size_t kPayloadHeaderSize = 4 + 8 + 8 + 8;

inline void write_payload_header(char* p, const PayloadHeader& h) {
  std::memcpy(p, &h.publisher, 4);
  std::memcpy(p + 4, &h.seq, 8);
  std::memcpy(p + 12, &h.sent_ns, 8);
  std::memcpy(p + 20, &h.due_ns, 8);
}

inline bool read_payload_header(std::string_view payload, PayloadHeader& h) {
  if (payload.size() < kPayloadHeaderSize) return false;
  std::memcpy(&h.publisher, payload.data(), 4);
  std::memcpy(&h.seq, payload.data() + 4, 8);
  std::memcpy(&h.sent_ns, payload.data() + 12, 8);
  std::memcpy(&h.due_ns, payload.data() + 20, 8);
  return true;
}

// Sequences one subscriber has seen from one publisher. A bitmap (1 bit per sequence, grown by
// doubling) makes duplicates exact even when they arrive out of order; memory is one bit per
// message received, summed over streams (~15 MB for 120 million messages), whatever the
// number of streams.
class SequenceTracker {
 public:
  enum class Outcome : uint8_t { InOrder, OutOfOrder, Duplicate };

  Outcome record(uint64_t seq) {
    const size_t word = static_cast<size_t>(seq >> 6);
    if (word >= bits_.size()) bits_.resize(std::max<size_t>(word + 1, bits_.size() * 2), 0);
    const uint64_t mask = uint64_t{1} << (seq & 63);
    if (bits_[word] & mask) {
      ++duplicates_;
      return Outcome::Duplicate;
    }
    bits_[word] |= mask;
    ++unique_;
    if (seq + 1 > end_) {
      end_ = seq + 1;
      return Outcome::InOrder;
    }
    ++out_of_order_;
    return Outcome::OutOfOrder;
  }

  uint64_t unique() const { return unique_; }
  uint64_t duplicates() const { return duplicates_; }
  uint64_t out_of_order() const { return out_of_order_; }
  // One past the highest sequence seen.
  uint64_t end() const { return end_; }
  // The bitmap, for merging the members of a shared-subscription group.
  std::vector<uint64_t> take_bits() { return std::move(bits_); }

 private:
  std::vector<uint64_t> bits_;
  uint64_t unique_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t out_of_order_ = 0;
  uint64_t end_ = 0;
};

// After a run, per publisher: how many messages it sent, and how many deliveries that makes
// (sent x matching receivers; scenarios with their own rules, such as retained rounds, fill it
// themselves).
struct PublisherResult {
  uint32_t publisher = 0;
  uint64_t sent = 0;
  uint64_t sent_window = 0;
  uint64_t expected = 0;
  uint64_t expected_window = 0;  // of the messages sent in the window
};

// What one receiver got from one publisher. A receiver is a subscriber, or a shared-subscription
// group whose members each leave a stream with merge_bits set: the runner ORs their bitmaps, so
// a message delivered to two members of a group counts once and as a duplicate.
struct StreamResult {
  uint32_t publisher = 0;
  uint32_t receiver = 0;
  uint64_t unique = 0;
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
  bool merge_bits = false;
  std::vector<uint64_t> bits;
};

// One loop thread's counters. "window" counts only messages whose send time falls inside the
// measurement window; latency likewise.
struct ThreadStats {
  uint64_t sent_window = 0;
  uint64_t sent_total = 0;
  uint64_t received_window = 0;
  uint64_t received_total = 0;
  uint64_t duplicates = 0;
  uint64_t out_of_order = 0;
  uint64_t misrouted = 0;      // payload from a publisher this subscriber did not subscribe to
  uint64_t bad_payload = 0;    // shorter than the header
  uint64_t window_stalls = 0;  // window full with no progress for --stall-timeout
  uint64_t rejected = 0;       // PUBACK/PUBREC with a failure reason code
  uint64_t unacked = 0;        // QoS 1/2 publishes the broker never acknowledged by the end
  // Rate mode: messages whose slot in the schedule fell inside the window but that were never
  // sent (the publisher was held back: the broker's flow control or a full socket).
  uint64_t behind_schedule = 0;
  Histogram latency;  // publish-to-receive (send time to receive), ns
  // Rate mode: due time (the message's slot in the schedule) to receive, ns, over the same
  // messages as `latency`: includes the time a message waited to be sent, so a broker that
  // holds publishers back cannot hide the delay (coordinated omission).
  Histogram latency_from_schedule;
  std::vector<PublisherResult> publishers;
  std::vector<StreamResult> streams;

  // Connection setup: connect() to CONNACK per client, and the span from the first connect()
  // to the last client ready (CONNACK, or SUBACK when it subscribes).
  Histogram connect_latency;
  uint64_t connected = 0;
  uint64_t first_connect_ns = 0;
  uint64_t last_ready_ns = 0;
  std::string tls;  // --tls: the protocol and cipher a connection negotiated

  // The loop thread's own CPU over the measurement window.
  double cpu_user_s = 0;
  double cpu_sys_s = 0;
  double wait_s = 0;  // runnable but waiting for a CPU (schedstat run_delay)
  double wall_s = 0;

  void merge_counters(ThreadStats& o);
};

}  // namespace starling::bench
