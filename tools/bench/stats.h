// What every scenario measures: the payload header that makes each message self-describing,
// per-stream sequence tracking (loss, duplicates, reordering) and the per-thread counters that
// the runner merges once the loops have stopped. Nothing here is shared between threads while
// a run is in progress.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "histogram.h"

namespace starling::bench {

// First bytes of every bench payload, little-endian (the sender and receiver are one machine):
// publisher index (u32), sequence number (u64), send time (u64, CLOCK_MONOTONIC ns). The rest of
// the payload is padding.
struct PayloadHeader {
  uint32_t publisher = 0;
  uint64_t seq = 0;
  uint64_t sent_ns = 0;
};
inline constexpr size_t kPayloadHeaderSize = 4 + 8 + 8;

inline void write_payload_header(char* p, const PayloadHeader& h) {
  std::memcpy(p, &h.publisher, 4);
  std::memcpy(p + 4, &h.seq, 8);
  std::memcpy(p + 12, &h.sent_ns, 8);
}

inline bool read_payload_header(std::string_view payload, PayloadHeader& h) {
  if (payload.size() < kPayloadHeaderSize) return false;
  std::memcpy(&h.publisher, payload.data(), 4);
  std::memcpy(&h.seq, payload.data() + 4, 8);
  std::memcpy(&h.sent_ns, payload.data() + 12, 8);
  return true;
}

// Sequences one subscriber has seen from one publisher. A bitmap (1 bit per sequence, grown by
// doubling) makes duplicates exact even when they arrive out of order; at a million messages a
// second that is ~125 KB per second of run, fine for a load generator.
class SequenceTracker {
 public:
  enum class Outcome : uint8_t { InOrder, OutOfOrder, Duplicate };

  Outcome record(uint64_t seq) {
    const size_t word = static_cast<size_t>(seq >> 6);
    if (word >= bits_.size()) bits_.resize(std::max<size_t>(word + 1, bits_.size() * 2), 0);
    const uint64_t mask = uint64_t{1} << (seq & 63);
    if (bits_[word] & mask) return Outcome::Duplicate;
    bits_[word] |= mask;
    ++unique_;
    if (seq + 1 > end_) {
      end_ = seq + 1;
      return Outcome::InOrder;
    }
    return Outcome::OutOfOrder;
  }

  uint64_t unique() const { return unique_; }
  // One past the highest sequence seen.
  uint64_t end() const { return end_; }

 private:
  std::vector<uint64_t> bits_;
  uint64_t unique_ = 0;
  uint64_t end_ = 0;
};

// After a run: how many messages a publisher sent, and how many distinct ones a subscriber got
// from it. lost = sent - unique, summed over streams; kept apart so scenarios whose publisher
// and subscribers live on different threads can still be reconciled by the runner.
struct PublisherResult {
  uint32_t publisher = 0;
  uint64_t sent = 0;
};
struct StreamResult {
  uint32_t publisher = 0;
  uint64_t unique = 0;
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
  Histogram latency;           // publish-to-receive, ns
  std::vector<PublisherResult> publishers;
  std::vector<StreamResult> streams;

  // The loop thread's own CPU over the measurement window.
  double cpu_user_s = 0;
  double cpu_sys_s = 0;
  double wait_s = 0;  // runnable but waiting for a CPU (schedstat run_delay)
  double wall_s = 0;

  void merge_counters(const ThreadStats& o);
};

}  // namespace starling::bench
