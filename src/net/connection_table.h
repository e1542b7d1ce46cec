// The connections of one worker, by token. A connection's token names its slot and the slot's
// generation: finding it is an index and a compare, the table costs about 8 bytes per
// connection (a hash map's node cost 32 and its bucket 8 more), and the token of a closed
// connection never finds the next one in its slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "net/connection.h"

namespace starling::net {

class ConnectionTable {
 public:
  // Tokens of connections have the top bit set; endpoints (bridges) take theirs from the
  // server's counter, which never gets there, and a wake looks in both.
  static constexpr uint64_t kConnectionBit = uint64_t{1} << 63;

  // Adds the connection make(token) returns, under a new token.
  template <typename Make>
  Connection* add(Make&& make) {
    uint64_t token = kConnectionBit | slots_.size();  // generation 0 of a new slot
    if (!free_.empty()) {
      token = free_.back();
      free_.pop_back();
    }
    std::unique_ptr<Connection> conn = make(token);
    Connection* raw = conn.get();
    const size_t slot = slot_of(token);
    if (slot == slots_.size()) {
      slots_.push_back(std::move(conn));
    } else {
      slots_[slot] = std::move(conn);
    }
    ++size_;
    return raw;
  }

  Connection* find(uint64_t token) const {
    if ((token & kConnectionBit) == 0) return nullptr;
    const size_t slot = slot_of(token);
    if (slot >= slots_.size()) return nullptr;
    Connection* c = slots_[slot].get();
    return c != nullptr && c->token() == token ? c : nullptr;
  }

  // Destroys the connection; its slot is used again under the next generation.
  void erase(uint64_t token) {
    if (find(token) == nullptr) return;
    slots_[slot_of(token)].reset();
    --size_;
    free_.push_back(kConnectionBit | (((token >> 32) + 1) & kGenerationMask) << 32 |
                    slot_of(token));
  }

  size_t size() const { return size_; }

  // Every connection, copied out: the caller may close (and so remove) them while it goes.
  std::vector<Connection*> all() const {
    std::vector<Connection*> out;
    out.reserve(size_);
    for (const auto& c : slots_)
      if (c) out.push_back(c.get());
    return out;
  }

 private:
  static constexpr uint64_t kGenerationMask = (uint64_t{1} << 31) - 1;
  static size_t slot_of(uint64_t token) { return static_cast<uint32_t>(token); }

  std::vector<std::unique_ptr<Connection>> slots_;
  std::vector<uint64_t> free_;  // the next token of each empty slot
  size_t size_ = 0;
};

}  // namespace starling::net
