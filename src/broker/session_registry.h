#pragma once

#include <cstddef>
#include <string_view>
#include <unordered_set>

#include "broker/session.h"

namespace starling::broker {

// Every session by client id. A set of the sessions themselves, looked up by the id each holds:
// a map from a copy of the id would cost every connection a 64-byte node and a heap copy of its
// id (ids longer than 15 bytes), against 24 bytes here (in a 32-byte allocation). Not thread-safe:
// the broker holds sessions_mutex_ around every use.
class SessionRegistry {
 public:
  SessionPtr find(std::string_view client_id) const {
    auto it = sessions_.find(client_id);
    return it == sessions_.end() ? nullptr : *it;
  }
  bool contains(std::string_view client_id) const { return sessions_.contains(client_id); }

  // Adds the session, in place of the one with its client id if there is one.
  void put(SessionPtr session) {
    if (auto it = sessions_.find(std::string_view(session->client_id())); it != sessions_.end()) {
      sessions_.erase(it);
    }
    sessions_.insert(std::move(session));
  }

  // Removes the client id's session only if it is this one (a newer one may own the id).
  bool erase(const SessionPtr& session) {
    auto it = sessions_.find(std::string_view(session->client_id()));
    if (it == sessions_.end() || *it != session) return false;
    sessions_.erase(it);
    return true;
  }

  // Removes and returns the client id's session; null when it has none.
  SessionPtr take(std::string_view client_id) {
    auto it = sessions_.find(client_id);
    if (it == sessions_.end()) return nullptr;
    SessionPtr session = *it;
    sessions_.erase(it);
    return session;
  }

  size_t size() const { return sessions_.size(); }
  auto begin() const { return sessions_.begin(); }
  auto end() const { return sessions_.end(); }

 private:
  struct ById {
    using is_transparent = void;
    static std::string_view id(std::string_view id) { return id; }
    static std::string_view id(const SessionPtr& s) { return s->client_id(); }
    // noexcept, so the set does not keep each hash in its node (8 bytes per session, and a
    // 48-byte allocation where 32 do).
    size_t operator()(const auto& x) const noexcept { return std::hash<std::string_view>{}(id(x)); }
    bool operator()(const auto& a, const auto& b) const { return id(a) == id(b); }
  };
  std::unordered_set<SessionPtr, ById, ById> sessions_;
};

}  // namespace starling::broker
