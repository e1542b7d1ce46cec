#include "scenario_pairs.h"

#include <unistd.h>

#include <algorithm>
#include <string>

namespace starling::bench {

namespace {

// Unlimited mode stops appending once this much output waits in a publisher's buffer: enough
// for a few hundred messages per send(), little enough to keep send timestamps honest.
constexpr size_t kMaxPendingUnlimited = 64 * 1024;
// Rate mode is open-loop: keep schedule while the broker is slow, up to this much backlog.
constexpr size_t kMaxPendingRate = 4 * 1024 * 1024;

}  // namespace

// One loop's share of the pairs.
class PairsScenario::Worker : public LoopHandler {
 public:
  Worker(ClientLoop& loop, RunControl& control, const CommonOptions& o)
      : loop_(loop), control_(control), o_(o) {
    if (o.rate > 0) interval_ns_ = 1e9 / static_cast<double>(o.rate);
    stall_timeout_ns_ = static_cast<uint64_t>(o.stall_timeout_s * 1e9);
  }

  void add_pair(uint32_t index, const std::string& client_prefix) {
    auto p = std::make_unique<Pair>();
    const auto slot = static_cast<uint32_t>(pairs_.size());
    const std::string topic = "bench/pair/" + std::to_string(index);
    p->index = index;
    ClientSpec pub;
    pub.client_id = client_prefix + "-pub-" + std::to_string(index);
    pub.tag = slot;
    ClientSpec sub;
    sub.client_id = client_prefix + "-sub-" + std::to_string(index);
    sub.tag = slot;
    mqtt::SubscriptionRequest req;
    req.filter = topic;
    req.qos = o_.qos;
    sub.subscriptions.push_back(req);
    p->pub = &loop_.add_client(std::move(pub));
    p->sub = &loop_.add_client(std::move(sub));
    p->tmpl.build(topic, o_.qos, o_.payload, o_.version);
    pairs_.push_back(std::move(p));
  }

  void on_message(Client& c, const mqtt::Publish& msg, uint64_t now) override {
    ThreadStats& s = loop_.stats();
    Pair& p = *pairs_[c.tag()];
    PayloadHeader h;
    if (!read_payload_header(msg.payload, h)) {
      ++s.bad_payload;
      return;
    }
    if (&c != p.sub || h.publisher != p.index) {
      ++s.misrouted;
      return;
    }
    switch (p.tracker.record(h.seq)) {
      case SequenceTracker::Outcome::Duplicate:
        ++s.duplicates;
        return;
      case SequenceTracker::Outcome::OutOfOrder:
        ++s.out_of_order;
        break;
      case SequenceTracker::Outcome::InOrder:
        break;
    }
    ++s.received_total;
    // max(): a window stall may have moved received_end past what actually arrived.
    p.received_end = std::max(p.received_end, p.tracker.end());
    if (timeline_.in_window(h.sent_ns)) {
      ++s.received_window;
      s.latency.record(now > h.sent_ns ? now - h.sent_ns : 0);
    }
  }

  uint64_t on_tick(uint64_t now, Phase phase) override {
    if (!have_timeline_) {
      timeline_ = control_.timeline();
      have_timeline_ = true;
      // Stagger the publishers' schedules across one interval so they do not fire in lockstep.
      for (auto& p : pairs_) {
        p->rate_start_ns = timeline_.publish_start_ns +
                           static_cast<uint64_t>(interval_ns_ * (p->index % 1000) / 1000.0);
      }
    }
    if (phase != Phase::Warmup && phase != Phase::Measure) return UINT64_MAX;
    uint64_t wake = UINT64_MAX;
    for (auto& p : pairs_) {
      if (!p->pub->ready()) continue;
      wake = std::min(wake, o_.rate > 0 ? publish_on_schedule(*p, now) : publish_window(*p, now));
    }
    return wake;
  }

  bool drained() const override {
    for (const auto& p : pairs_) {
      if (p->received_end < p->next_seq || p->pub->inflight() > 0) return false;
    }
    return true;
  }

  void finish(ThreadStats& stats) override {
    for (const auto& p : pairs_) {
      stats.publishers.push_back({p->index, p->next_seq});
      stats.streams.push_back({p->index, p->tracker.unique()});
    }
  }

 private:
  struct Pair {
    uint32_t index = 0;
    Client* pub = nullptr;
    Client* sub = nullptr;
    PublishTemplate tmpl;
    uint64_t next_seq = 0;      // also: messages sent so far
    uint64_t received_end = 0;  // one past the highest sequence the subscriber got
    SequenceTracker tracker;
    uint64_t rate_start_ns = 0;
    uint64_t stall_since_ns = 0;  // window full since; 0: not full
    uint64_t stall_end = 0;       // received_end when the stall began
    bool stall_counted = false;
  };

  // Appends one message; false when the client has no QoS packet id to spare.
  bool send_one(Pair& p, uint64_t ts) {
    if (!loop_.publish(*p.pub, p.tmpl, PayloadHeader{p.index, p.next_seq, ts})) return false;
    ++p.next_seq;
    ThreadStats& s = loop_.stats();
    ++s.sent_total;
    if (timeline_.in_window(ts)) ++s.sent_window;
    return true;
  }

  // Unlimited mode: as fast as the window allows.
  uint64_t publish_window(Pair& p, uint64_t now) {
    const uint64_t in_flight = p.next_seq - p.received_end;
    if (in_flight >= o_.window) {
      // Full: normally the subscriber's reads free it. Nothing arriving for stall_timeout is
      // a stall (counted once per episode). At QoS 0 the broker may legitimately have dropped
      // the in-flight messages, so the window reopens and the loss shows in the lost count. At
      // QoS 1/2 the broker acknowledged them: they are late, not gone, and reopening would only
      // pile more onto a broker that is already behind.
      if (p.stall_since_ns == 0 || p.stall_end != p.received_end) {
        p.stall_since_ns = now;
        p.stall_end = p.received_end;
        p.stall_counted = false;
      } else if (now - p.stall_since_ns >= stall_timeout_ns_) {
        if (!p.stall_counted) ++loop_.stats().window_stalls;
        p.stall_counted = true;
        if (o_.qos == 0) {
          p.received_end = p.next_seq;
          p.stall_since_ns = 0;
          return 0;
        }
        return UINT64_MAX;  // arrivals wake the loop
      }
      return p.stall_since_ns + stall_timeout_ns_;
    }
    p.stall_since_ns = 0;
    if (p.pub->write_blocked()) return UINT64_MAX;  // EPOLLOUT wakes the loop
    uint64_t room = o_.window - in_flight;
    // One timestamp per batch: the batch goes out in the send() right below.
    const uint64_t ts = now_ns();
    bool quota = true;
    while (room > 0 && p.pub->pending_output() < kMaxPendingUnlimited) {
      if (!send_one(p, ts)) {
        quota = false;  // PUBACKs will wake the loop
        break;
      }
      --room;
    }
    loop_.flush(*p.pub);
    return room > 0 && quota && !p.pub->write_blocked() ? 0 : UINT64_MAX;
  }

  // Rate mode: message k is due at rate_start + k / rate. Sends whatever is due, so a late
  // wakeup catches up rather than lowering the rate.
  uint64_t publish_on_schedule(Pair& p, uint64_t now) {
    auto due = [&] {
      return p.rate_start_ns +
             static_cast<uint64_t>(static_cast<double>(p.next_seq) * interval_ns_);
    };
    if (due() > now) return due();
    if (p.pub->pending_output() >= kMaxPendingRate) return UINT64_MAX;
    const uint64_t ts = now_ns();
    bool sent = false;
    while (due() <= ts && p.pub->pending_output() < kMaxPendingRate) {
      if (!send_one(p, ts)) break;
      sent = true;
    }
    if (sent) loop_.flush(*p.pub);
    return due() > ts ? due() : UINT64_MAX;
  }

  ClientLoop& loop_;
  RunControl& control_;
  const CommonOptions& o_;
  std::vector<std::unique_ptr<Pair>> pairs_;
  Timeline timeline_;
  bool have_timeline_ = false;
  double interval_ns_ = 0;
  uint64_t stall_timeout_ns_ = 0;
};

PairsScenario::PairsScenario(const CommonOptions& common, const PairsOptions& pairs)
    : common_(common), pairs_(pairs) {}

PairsScenario::~PairsScenario() = default;

void PairsScenario::setup(const std::vector<ClientLoop*>& loops, RunControl& control) {
  // The pid keeps client ids unique when two benches share a broker.
  const std::string prefix = "sbench-" + std::to_string(::getpid());
  for (ClientLoop* loop : loops) {
    workers_.push_back(std::make_unique<Worker>(*loop, control, common_));
    loop->set_handler(workers_.back().get());
  }
  for (uint32_t i = 0; i < pairs_.pairs; ++i)
    workers_[i % workers_.size()]->add_pair(i, prefix);
}

void PairsScenario::describe(Report& report) const {
  report.params.emplace_back("pairs", static_cast<int64_t>(pairs_.pairs));
}

}  // namespace starling::bench
