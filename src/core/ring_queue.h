// A double-ended queue in one ring buffer that holds no memory while empty.
//
// Why not std::deque: libstdc++'s deque allocates its map and a 512-byte block when it is
// constructed, so every idle session paid about 1.2 KiB for its two empty queues (issue 17). This
// ring allocates on the first push, grows by doubling, and gives its buffer back once it is empty
// again when the buffer is larger than a few elements (a burst does not keep its capacity).
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
  RingQueue(RingQueue&& o) noexcept
      : buf_(std::exchange(o.buf_, nullptr)),
        cap_(std::exchange(o.cap_, 0)),
        head_(std::exchange(o.head_, 0)),
        size_(std::exchange(o.size_, 0)) {}
  RingQueue& operator=(RingQueue&& o) noexcept {
    if (this != &o) {
      release();
      buf_ = std::exchange(o.buf_, nullptr);
      cap_ = std::exchange(o.cap_, 0);
      head_ = std::exchange(o.head_, 0);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }

  T& operator[](size_t i) { return buf_[(head_ + i) & (cap_ - 1)]; }
  const T& operator[](size_t i) const { return buf_[(head_ + i) & (cap_ - 1)]; }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  iterator begin() { return {this, 0}; }
  iterator end() { return {this, size_}; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size_}; }

  template <typename... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == cap_) grow();
    T* slot = &buf_[(head_ + size_) & (cap_ - 1)];
    ::new (static_cast<void*>(slot)) T(std::forward<Args>(args)...);
    ++size_;
    return *slot;
  }
  void push_back(T&& v) { emplace_back(std::move(v)); }
  void push_back(const T& v) { emplace_back(v); }

  void pop_front() {
    std::destroy_at(&front());
    head_ = (head_ + 1) & (cap_ - 1);
    if (--size_ == 0) emptied();
  }
  void pop_back() {
    std::destroy_at(&back());
    if (--size_ == 0) emptied();
  }

  // Removes [first, last): the shorter side moves over the gap.
  iterator erase(const_iterator first, const_iterator last) {
    const size_t from = first.index(), to = last.index(), n = to - from;
    if (n == 0) return {this, from};
    if (from < size_ - to) {
      // Fewer elements before the gap: move them back, drop the first n.
      for (size_t i = to; i-- > n;)
        (*this)[i] = std::move((*this)[i - n]);
      for (size_t i = 0; i < n; ++i)
        std::destroy_at(&(*this)[i]);
      head_ = static_cast<uint32_t>((head_ + n) & (cap_ - 1));
    } else {
      for (size_t i = from; i + n < size_; ++i)
        (*this)[i] = std::move((*this)[i + n]);
      for (size_t i = size_ - n; i < size_; ++i)
        std::destroy_at(&(*this)[i]);
    }
    size_ -= static_cast<uint32_t>(n);
    if (size_ == 0) emptied();
    return {this, from};
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }

  void clear() { release(); }

 private:
  void grow() {
    const uint32_t cap = cap_ == 0 ? 2 : cap_ * 2;
    T* buf = static_cast<T*>(::operator new (cap * sizeof(T), std::align_val_t{alignof(T)}));
    for (size_t i = 0; i < size_; ++i) {
      T& from = (*this)[i];
      ::new (static_cast<void*>(&buf[i])) T(std::move(from));
      std::destroy_at(&from);
    }
    free_buffer();
    buf_ = buf;
    cap_ = cap;
    head_ = 0;
  }
  void emptied() {
    head_ = 0;
    if (cap_ > kKeptCapacity) release();
  }
  // Destroys every element and frees the buffer.
  void release() {
    for (size_t i = 0; i < size_; ++i)
      std::destroy_at(&(*this)[i]);
    size_ = 0;
    free_buffer();
    buf_ = nullptr;
    cap_ = 0;
    head_ = 0;
  }
  void free_buffer() {
    if (buf_) ::operator delete (buf_, std::align_val_t{alignof(T)});
  }

  // 32-bit counts keep the queue at 24 bytes: a session holds two of them.
  T* buf_ = nullptr;
  uint32_t cap_ = 0;  // 0 or a power of two
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};

}  // namespace starling::core
