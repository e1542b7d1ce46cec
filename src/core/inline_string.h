// An immutable string in 24 bytes that keeps up to 23 characters in place and only longer ones
// on the heap. Every session holds its client id for its whole life; as a std::string an id of
// 16 to 23 characters ("esp32-a1b2c3d4e5f6", most generated ids) costs 32 bytes in the session
// and a 32-byte allocation, here 24 bytes and none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace starling::core {

class InlineString {
 public:
  static constexpr size_t kInlineCapacity = 23;

  InlineString() { set_inline_size(0); }
  explicit InlineString(std::string_view text) {
    if (text.size() <= kInlineCapacity) {
      std::memcpy(bytes_, text.data(), text.size());
      set_inline_size(text.size());
    } else {
      char* heap = new char[text.size()];
      std::memcpy(heap, text.data(), text.size());
      std::memcpy(bytes_, &heap, sizeof heap);
      const uint64_t size = text.size();
      std::memcpy(bytes_ + sizeof heap, &size, sizeof size);
      bytes_[kInlineCapacity] = kOnHeap;
    }
  }
  ~InlineString() {
    if (on_heap()) delete[] heap_data();
  }
  InlineString(const InlineString& o) : InlineString(o.view()) {}
  InlineString& operator=(const InlineString& o) {
    if (this != &o) {
      InlineString copy(o);
      swap(copy);
    }
    return *this;
  }
  InlineString(InlineString&& o) noexcept {
    std::memcpy(bytes_, o.bytes_, sizeof bytes_);
    o.set_inline_size(0);
  }
  InlineString& operator=(InlineString&& o) noexcept {
    if (this != &o) {
      InlineString taken(std::move(o));
      swap(taken);
    }
    return *this;
  }

  std::string_view view() const {
    if (on_heap()) {
      uint64_t size = 0;
      std::memcpy(&size, bytes_ + sizeof(char*), sizeof size);
      return {heap_data(), static_cast<size_t>(size)};
    }
    return {bytes_, kInlineCapacity - static_cast<uint8_t>(bytes_[kInlineCapacity])};
  }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  size_t size() const { return view().size(); }
  bool empty() const { return view().empty(); }

  friend bool operator==(const InlineString& a, std::string_view b) { return a.view() == b; }

 private:
  // The last byte: kInlineCapacity - size for an inline string (so 23 characters end in 0),
  // kOnHeap for a heap one (then a pointer and a size come first).
  static constexpr char kOnHeap = static_cast<char>(0xFF);

  bool on_heap() const { return bytes_[kInlineCapacity] == kOnHeap; }
  char* heap_data() const {
    char* p = nullptr;
    std::memcpy(&p, bytes_, sizeof p);
    return p;
  }
  void set_inline_size(size_t size) {
    bytes_[kInlineCapacity] = static_cast<char>(kInlineCapacity - size);
  }
  void swap(InlineString& o) noexcept {
    char t[sizeof bytes_];
    std::memcpy(t, bytes_, sizeof t);
    std::memcpy(bytes_, o.bytes_, sizeof t);
    std::memcpy(o.bytes_, t, sizeof t);
  }

  alignas(8) char bytes_[kInlineCapacity + 1];
};

}  // namespace starling::core
