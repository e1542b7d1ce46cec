// Read-only views of the broker for the HTTP API. Each copies what it shows under the locks
// that guard it and never holds two of them: the registry lock is released before any
// session's own lock is taken, and the tree lock is not needed (a session's subscriptions are
// kept in the session too).
#include <algorithm>
#include <tuple>

#include "broker/broker.h"

namespace starling::broker {

namespace {

template <typename T>
std::vector<T> page(std::vector<T>&& all, size_t offset, size_t limit) {
  if (offset >= all.size()) return {};
  auto first = all.begin() + static_cast<std::ptrdiff_t>(offset);
  auto last = all.end();
  if (limit < all.size() - offset) last = first + static_cast<std::ptrdiff_t>(limit);
  return std::vector<T>(std::make_move_iterator(first), std::make_move_iterator(last));
}

}  // namespace

std::vector<SessionPtr> Broker::all_sessions() const {
  std::vector<SessionPtr> out;
  std::lock_guard lock(sessions_mutex_);
  out.assign(sessions_.begin(), sessions_.end());
  return out;
}

ClientPage Broker::clients(std::string_view id_prefix, size_t offset, size_t limit) const {
  std::vector<SessionPtr> matching;
  {
    std::lock_guard lock(sessions_mutex_);
    for (const SessionPtr& session : sessions_) {
      if (std::string_view(session->client_id()).starts_with(id_prefix)) {
        matching.push_back(session);
      }
    }
  }
  std::sort(matching.begin(), matching.end(), [](const SessionPtr& a, const SessionPtr& b) {
    return a->client_id() < b->client_id();
  });
  ClientPage result;
  result.total = matching.size();
  for (const SessionPtr& s : page(std::move(matching), offset, limit)) {
    result.clients.push_back(s->info());
  }
  return result;
}

std::optional<SessionInfo> Broker::client(const std::string& client_id) const {
  SessionPtr session;
  {
    std::lock_guard lock(sessions_mutex_);
    session = sessions_.find(client_id);
    if (!session) return std::nullopt;
  }
  return session->info();
}

SubscriptionPage Broker::subscriptions(const std::string& client_id, size_t offset,
                                       size_t limit) const {
  std::vector<SessionPtr> sessions;
  if (client_id.empty()) {
    sessions = all_sessions();
  } else {
    std::lock_guard lock(sessions_mutex_);
    if (SessionPtr session = sessions_.find(client_id)) sessions.push_back(std::move(session));
  }
  std::vector<SubscriptionInfo> all;
  for (const SessionPtr& s : sessions) {
    for (auto& [filter, options] : s->subscriptions()) {
      all.push_back(SubscriptionInfo{std::string(s->client_id()), filter, options});
    }
  }
  std::sort(all.begin(), all.end(), [](const SubscriptionInfo& a, const SubscriptionInfo& b) {
    return std::tie(a.client_id, a.filter) < std::tie(b.client_id, b.filter);
  });
  SubscriptionPage result;
  result.total = all.size();
  result.subscriptions = page(std::move(all), offset, limit);
  return result;
}

RetainedPage Broker::retained(const std::string& filter, size_t offset, size_t limit,
                              Clock::time_point now) const {
  std::vector<MessagePtr> all;
  {
    std::shared_lock lock(retained_mutex_);
    if (filter.empty()) {
      retained_.for_each([&](const MessagePtr& m) {
        if (!m->expired(now)) all.push_back(m);
      });
    } else {
      retained_.match(filter, now, all);
    }
  }
  std::sort(all.begin(), all.end(),
            [](const MessagePtr& a, const MessagePtr& b) { return a->topic < b->topic; });
  RetainedPage result;
  result.total = all.size();
  result.messages = page(std::move(all), offset, limit);
  return result;
}

QueueTotals Broker::queue_totals() const {
  QueueTotals totals;
  for (const SessionPtr& s : all_sessions()) {
    uint64_t queued = s->queued_count();
    totals.queued += queued;
    totals.inflight += s->inflight_count();
    totals.max_depth = std::max(totals.max_depth, queued);
  }
  return totals;
}

Attachment Broker::connection_of(const std::string& client_id, bool& found) const {
  SessionPtr session;
  {
    std::lock_guard lock(sessions_mutex_);
    session = sessions_.find(client_id);
    found = session != nullptr;
    if (!found) return Attachment{};
  }
  return session->link();
}

}  // namespace starling::broker
