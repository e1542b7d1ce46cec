// A double-ended queue in one ring buffer that holds no memory while empty.
//
// Why not std::deque: libstdc++'s deque allocates its map and a 512-byte block when it is
// constructed, so every idle session paid about 1.2 KiB for its two empty queues (issue 17). This
// ring allocates on the first push, grows by doubling, and gives its buffer back once it is empty
// again when the buffer is larger than a few elements (a burst does not keep its capacity).
//
// The queue itself is one pointer: its capacity, head and size live in front of the elements in
// the buffer, so an empty queue (most sessions' most of the time) costs 8 bytes, not 24.
//
// Iterators are random access and are invalidated by any change, as with std::vector.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace starling::core {

template <typename T>
class RingQueue {
  template <typename Q, typename V>
  class Iter {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = V*;
    using reference = V&;

    Iter() = default;
    Iter(Q* q, size_t i) : q_(q), i_(i) {}
    // iterator -> const_iterator, as with the standard containers.
    operator Iter<const RingQueue, const T>() const  // NOLINT(google-explicit-constructor)
        requires(!std::is_const_v<V>) {
      return {q_, i_};
    }

    reference operator*() const { return (*q_)[i_]; }
    pointer operator->() const { return &(*q_)[i_]; }
    reference operator[](difference_type n) const { return (*q_)[i_ + n]; }
    Iter& operator++() {
      ++i_;
      return *this;
    }
    Iter operator++(int) {
      Iter t = *this;
      ++i_;
      return t;
    }
    Iter& operator--() {
      --i_;
      return *this;
    }
    Iter operator--(int) {
      Iter t = *this;
      --i_;
      return t;
    }
    Iter& operator+=(difference_type n) {
      i_ += n;
      return *this;
    }
    Iter& operator-=(difference_type n) {
      i_ -= n;
      return *this;
    }
    friend Iter operator+(Iter a, difference_type n) { return a += n; }
    friend Iter operator+(difference_type n, Iter a) { return a += n; }
    friend Iter operator-(Iter a, difference_type n) { return a -= n; }
    friend difference_type operator-(const Iter& a, const Iter& b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(const Iter& a, const Iter& b) { return a.i_ == b.i_; }
    friend auto operator<=>(const Iter& a, const Iter& b) { return a.i_ <=> b.i_; }
    size_t index() const { return i_; }

   private:
    Q* q_ = nullptr;
    size_t i_ = 0;
  };

 public:
  using value_type = T;
  using size_type = size_t;
  using reference = T&;
  using const_reference = const T&;
  using iterator = Iter<RingQueue, T>;
  using const_iterator = Iter<const RingQueue, const T>;

  // Capacities up to this stay allocated when the queue empties (a steady trickle of one message
  // at a time does not allocate per message).
  static constexpr size_t kKeptCapacity = 4;

  RingQueue() = default;
  ~RingQueue() { release(); }
  RingQueue(RingQueue&& o) noexcept : block_(std::exchange(o.block_, nullptr)) {}
  RingQueue& operator=(RingQueue&& o) noexcept {
    if (this != &o) {
      release();
      block_ = std::exchange(o.block_, nullptr);
    }
    return *this;
  }
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  bool empty() const { return size() == 0; }
  size_t size() const { return block_ ? block_->size : 0; }
  size_t capacity() const { return block_ ? block_->cap : 0; }

  T& operator[](size_t i) { return slots()[(block_->head + i) & (block_->cap - 1)]; }
  const T& operator[](size_t i) const { return slots()[(block_->head + i) & (block_->cap - 1)]; }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[block_->size - 1]; }
  const T& back() const { return (*this)[block_->size - 1]; }

  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size()}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size()}; }

  template <typename... Args>
  T& emplace_back(Args&&... args) {
    if (size() == capacity()) grow();
    T* slot = &slots()[(block_->head + block_->size) & (block_->cap - 1)];
    ::new (static_cast<void*>(slot)) T(std::forward<Args>(args)...);
    ++block_->size;
    return *slot;
  }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  void push_back(const T& v) { emplace_back(v); }

  void pop_front() {
    std::destroy_at(&front());
    block_->head = (block_->head + 1) & (block_->cap - 1);
    if (--block_->size == 0) emptied();
  }
  void pop_back() {
    std::destroy_at(&back());
    if (--block_->size == 0) emptied();
  }

  // Removes [first, last): the shorter side moves over the gap.
  iterator erase(const_iterator first, const_iterator last) {
    const size_t from = first.index(), to = last.index(), n = to - from;
    if (n == 0) return {this, from};
    const size_t size = block_->size;
    if (from < size - to) {
      // Fewer elements before the gap: move them back, drop the first n.
      for (size_t i = to; i-- > n;)
        (*this)[i] = std::move((*this)[i - n]);
      for (size_t i = 0; i < n; ++i)
        std::destroy_at(&(*this)[i]);
      block_->head = static_cast<uint32_t>((block_->head + n) & (block_->cap - 1));
    } else {
      for (size_t i = from; i + n < size; ++i)
        (*this)[i] = std::move((*this)[i + n]);
      for (size_t i = size - n; i < size; ++i)
        std::destroy_at(&(*this)[i]);
    }
    block_->size -= static_cast<uint32_t>(n);
    if (block_->size == 0) emptied();
    return {this, from};
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }

  void clear() { release(); }

 private:
  // The buffer: counts, then the elements (at kSlotsOffset, aligned for T).
  struct Block {
    uint32_t cap;  // a power of two
    uint32_t head;
    uint32_t size;
  };
  static constexpr size_t kAlign = std::max(alignof(T), alignof(Block));
  static constexpr size_t kSlotsOffset = (sizeof(Block) + alignof(T) - 1) / alignof(T) * alignof(T);

  static T* slots_of(Block* block) {
    return std::launder(reinterpret_cast<T*>(reinterpret_cast<std::byte*>(block) + kSlotsOffset));
  }
  T* slots() const { return slots_of(block_); }
  static Block* allocate(uint32_t cap) {
    void* raw = ::operator new (kSlotsOffset + cap * sizeof(T), std::align_val_t{kAlign});
    return ::new (raw) Block{cap, 0, 0};
  }
  void grow() {
    const uint32_t cap = block_ ? block_->cap * 2 : 2;
    Block* block = allocate(cap);
    T* to = slots_of(block);
    const uint32_t size = static_cast<uint32_t>(this->size());
    for (size_t i = 0; i < size; ++i) {
      T& from = (*this)[i];
      ::new (static_cast<void*>(&to[i])) T(std::move(from));
      std::destroy_at(&from);
    }
    block->size = size;
    free_block();
    block_ = block;
  }
  void emptied() {
    block_->head = 0;
    if (block_->cap > kKeptCapacity) release();
  }
  // Destroys every element and frees the buffer.
  void release() {
    if (!block_) return;
    for (size_t i = 0; i < block_->size; ++i)
      std::destroy_at(&(*this)[i]);
    free_block();
    block_ = nullptr;
  }
  void free_block() {
    if (block_) ::operator delete (block_, std::align_val_t{kAlign});
  }

  Block* block_ = nullptr;  // null: nothing allocated
};

}  // namespace starling::core
