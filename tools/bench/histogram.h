// Latency histogram for the bench: log-linear buckets (HdrHistogram-style) over the whole
// uint64 range, 128 linear sub-buckets per power of two, so any recorded value lands in a bucket
// at most 1/128 (0.8%) of its value wide. Fixed size, allocated once: record() never allocates,
// which matters because it runs once per received message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace starling::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBits;  // 128
  // Values below 128 get one exact bucket each; every octave above gets 128 buckets.
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSubBuckets;

  Histogram();

  void record(uint64_t value) {
    ++counts_[bucket_of(value)];
    ++count_;
    sum_ += value;
    if (value < min_) min_ = value;
    if (value > max_) max_ = value;
  }

  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // Value at quantile q in [0, 1]: the midpoint of the bucket holding the ceil(q * count)-th
  // smallest value, clamped to [min, max]. 0 when empty.
  uint64_t quantile(double q) const;

  static size_t bucket_of(uint64_t value) {
    if (value < kSubBuckets) return static_cast<size_t>(value);
    const int exponent = 63 - __builtin_clzll(value);  // >= kSubBits
    const int shift = exponent - kSubBits;
    return static_cast<size_t>((shift + 1) * kSubBuckets + ((value >> shift) - kSubBuckets));
  }
  static uint64_t bucket_low(size_t index);
  static uint64_t bucket_width(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  // Overflows only after ~584 years of summed nanoseconds; good enough for a mean.
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace starling::bench
