// The HTTP auth service's answers, kept for a while ([auth.http] cache_ttl_s) so that a burst of
// reconnects or a publisher's stream of messages costs the service one request. Shared by all
// worker threads (one mutex: a lookup is a hash and a compare); bounded by max_entries: when
// full, expired entries go first, then arbitrary ones.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace starling::hooks {

template <typename Answer>
class AnswerCache {
 public:
  using Clock = std::chrono::steady_clock;

  AnswerCache(std::chrono::seconds ttl, size_t max_entries)
      : ttl_(ttl), max_entries_(max_entries) {}

  bool enabled() const { return ttl_.count() > 0; }

  std::optional<Answer> find(const std::string& key) {
    if (!enabled()) return std::nullopt;
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (Clock::now() >= it->second.expires) {
      entries_.erase(it);
      return std::nullopt;
    }
    return it->second.answer;
  }

  void put(const std::string& key, const Answer& answer) {
    if (!enabled()) return;
    const auto now = Clock::now();
    std::lock_guard lock(mutex_);
    if (entries_.size() >= max_entries_ && !entries_.count(key)) make_room(now);
    entries_.insert_or_assign(key, Entry{answer, now + ttl_});
  }

 private:
  struct Entry {
    Answer answer;
    Clock::time_point expires;
  };

  void make_room(Clock::time_point now) {
    std::erase_if(entries_, [now](const auto& e) { return now >= e.second.expires; });
    while (entries_.size() >= max_entries_)
      entries_.erase(entries_.begin());
  }

  const std::chrono::seconds ttl_;
  const size_t max_entries_;
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace starling::hooks
