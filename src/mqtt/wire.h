// MQTT data representations (section 1.5): a bounds-checked reader and the matching writers.
// Private to src/mqtt; the codec builds every packet out of these.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace starling::mqtt::wire {

// Strings and binary data carry a 16-bit length; longer values cannot be represented.
inline constexpr size_t kMaxString = 0xFFFF;
inline constexpr uint32_t kMaxVarint = 268'435'455;

enum class VarintParse : uint8_t { Ok, Incomplete, Malformed };

// Decodes a variable byte integer from p[0..n). Malformed when it would need a fifth byte or is
// not in its shortest form (section 1.5.5 requires the minimum number of bytes).
inline VarintParse parse_varint(const uint8_t* p, size_t n, uint32_t& value, size_t& len) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (i == n) return VarintParse::Incomplete;
    const uint8_t b = p[i];
    v |= uint32_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) {
      if (b == 0 && i > 0) return VarintParse::Malformed;
      value = v;
      len = i + 1;
      return VarintParse::Ok;
    }
  }
  return VarintParse::Malformed;
}

// Every read either succeeds entirely or returns false and leaves the output untouched, so the
// decoders can map any false to Malformed Packet without further bookkeeping.
class Reader {
 public:
  explicit Reader(std::string_view buf)
      : p_(reinterpret_cast<const uint8_t*>(buf.data())), n_(buf.size()) {}

  size_t remaining() const { return n_ - pos_; }
  bool empty() const { return pos_ == n_; }

  bool u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = p_[pos_++];
    return true;
  }
  bool u16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = static_cast<uint16_t>((p_[pos_] << 8) | p_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = (uint32_t{p_[pos_]} << 24) | (uint32_t{p_[pos_ + 1]} << 16) |
        (uint32_t{p_[pos_ + 2]} << 8) | uint32_t{p_[pos_ + 3]};
    pos_ += 4;
    return true;
  }
  bool varint(uint32_t& v) {
    size_t len = 0;
    if (parse_varint(p_ + pos_, remaining(), v, len) != VarintParse::Ok) return false;
    pos_ += len;
    return true;
  }
  bool bytes(size_t n, std::string_view& v) {
    if (remaining() < n) return false;
    v = std::string_view(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return true;
  }
  // UTF-8 string or binary data: two-byte length, then the bytes.
  bool string(std::string_view& v) {
    uint16_t len = 0;
    if (remaining() < 2) return false;
    const size_t save = pos_;
    u16(len);
    if (bytes(len, v)) return true;
    pos_ = save;
    return false;
  }
  std::string_view rest() {
    std::string_view v(reinterpret_cast<const char*>(p_ + pos_), remaining());
    pos_ = n_;
    return v;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

inline size_t varint_size(uint32_t v) {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

// Writers come in two flavours with one interface so that every encoder can run once to measure
// the remaining length and once to write: the two can never disagree.
class SizeSink {
 public:
  void u8(uint8_t) { n_ += 1; }
  void u16(uint16_t) { n_ += 2; }
  void u32(uint32_t) { n_ += 4; }
  void varint(uint32_t v) { n_ += varint_size(std::min(v, kMaxVarint)); }
  void raw(std::string_view s) { n_ += s.size(); }
  void string(std::string_view s) { n_ += 2 + std::min(s.size(), kMaxString); }
  size_t size() const { return n_; }

 private:
  size_t n_ = 0;
};

class AppendSink {
 public:
  explicit AppendSink(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    out_.append(b, 2);
  }
  void u32(uint32_t v) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
    out_.append(b, 4);
  }
  // Values above kMaxVarint are clamped: a five-byte form does not exist on the wire.
  void varint(uint32_t v) {
    v = std::min(v, kMaxVarint);
    char b[4];
    size_t n = 0;
    do {
      uint8_t byte = v & 0x7F;
      v >>= 7;
      if (v != 0) byte |= 0x80;
      b[n++] = static_cast<char>(byte);
    } while (v != 0);
    out_.append(b, n);
  }
  void raw(std::string_view s) { out_.append(s); }
  // Over-long values are cut rather than given a wrapped length, which would desynchronise the
  // stream; sending them is the caller's bug either way.
  void string(std::string_view s) {
    s = s.substr(0, kMaxString);
    u16(static_cast<uint16_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

}  // namespace starling::mqtt::wire
