#include "traffic.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <mutex>
#include <queue>
#include <utility>

namespace starling::bench {

namespace {

// Unlimited mode stops appending once this much output waits in a publisher's buffer: enough
// for a few hundred messages per send(), little enough to keep send timestamps honest.
constexpr size_t kMaxPendingUnlimited = 64 * 1024;
// Rate mode is open-loop: keep schedule while the broker is slow, up to this much backlog.
constexpr size_t kMaxPendingRate = 4 * 1024 * 1024;
constexpr uint64_t kNoWake = UINT64_MAX;
// Blocked publishers are checked for stalls this often.
constexpr uint64_t kStallScanNs = 50'000'000;
// Subscriber tags carry this bit; publisher tags do not.
constexpr uint32_t kSubscriberTag = 0x80000000u;

}  // namespace

struct TrafficScenario::Shared {
  // One cache line per publisher: subscriber loops write it, the owner reads it.
  struct alignas(64) Publisher {
    std::atomic<uint64_t> delivered{0};      // distinct messages received, over all receivers
    std::atomic<uint64_t> wake_at{kNoWake};  // owner parked until delivered reaches this
    Worker* owner = nullptr;
    uint32_t local = 0;  // index in the owner's publisher list
  };
  std::unique_ptr<Publisher[]> publishers;
  uint32_t publisher_count = 0;
  // Deliveries still expected over all publishers (sent x fan-out - delivered): zero means
  // drained. Written once per batch / loop iteration, not per message.
  alignas(64) std::atomic<int64_t> outstanding{0};
  alignas(64) std::atomic<uint32_t> publishers_done{0};  // --count reached
  // Loops that own publishers and have not yet seen the window end. Each loop reads its own
  // clock, so one may be draining while another still sends its last batch: nobody may call
  // the run drained before every publishing loop has stopped (and counted what it sent).
  std::atomic<uint32_t> publishing_loops{0};
};

class TrafficScenario::Worker : public LoopHandler {
 public:
  Worker(ClientLoop& loop, RunControl& control, Shared& shared, const CommonOptions& o,
         uint32_t window)
      : loop_(loop), control_(control), shared_(shared), o_(o), window_(window) {
    if (o.rate > 0) interval_ns_ = 1e9 / static_cast<double>(o.rate);
    stall_timeout_ns_ = static_cast<uint64_t>(o.stall_timeout_s * 1e9);
    // Parked publishers wake once an eighth of the window is free again: fewer cross-thread
    // wake-ups than waking on every message, and the window never runs dry.
    resume_room_ = std::max<uint32_t>(1, window_ / 8);
    pending_.assign(shared.publisher_count, 0);
  }

  ClientLoop& loop() { return loop_; }

  void add_publisher(uint32_t index, const std::string& topic, uint64_t fanout,
                     const std::string& prefix) {
    auto p = std::make_unique<Pub>();
    p->index = index;
    p->fanout = fanout;
    ClientSpec spec;
    spec.client_id = prefix + "-pub-" + std::to_string(index);
    spec.tag = static_cast<uint32_t>(pubs_.size());
    p->client = &loop_.add_client(std::move(spec));
    p->tmpl.build(topic, o_.qos, o_.payload, o_.version);
    Shared::Publisher& sp = shared_.publishers[index];
    sp.owner = this;
    sp.local = static_cast<uint32_t>(pubs_.size());
    pubs_.push_back(std::move(p));
  }

  void add_subscriber(uint32_t index, const Topology::Subscriber& s, const Topology::Receiver& r,
                      const std::string& prefix) {
    Sub sub;
    sub.receiver = s.receiver;
    sub.first_publisher = r.first_publisher;
    sub.shared = r.shared;
    sub.trackers.resize(r.publisher_count);
    ClientSpec spec;
    spec.client_id = prefix + "-sub-" + std::to_string(index);
    spec.tag = kSubscriberTag | static_cast<uint32_t>(subs_.size());
    mqtt::SubscriptionRequest req;
    req.filter = s.filter;
    req.qos = o_.sub_qos;
    spec.subscriptions.push_back(req);
    sub.client = &loop_.add_client(std::move(spec));
    subs_.push_back(std::move(sub));
  }

  // Called from other loops' threads: these local publishers may send again.
  void post(const std::vector<uint32_t>& locals) {
    {
      std::lock_guard lock(inbox_mu_);
      inbox_.insert(inbox_.end(), locals.begin(), locals.end());
      inbox_nonempty_.store(true, std::memory_order_release);
    }
    loop_.wake();
  }

  // --- LoopHandler ---

  void on_message(Client& c, const mqtt::Publish& msg, uint64_t now) override {
    ThreadStats& s = loop_.stats();
    if (!(c.tag() & kSubscriberTag)) {
      ++s.misrouted;
      return;
    }
    Sub& sub = subs_[c.tag() & ~kSubscriberTag];
    PayloadHeader h;
    if (!read_payload_header(msg.payload, h)) {
      ++s.bad_payload;
      return;
    }
    const uint32_t offset = h.publisher - sub.first_publisher;  // wraps when below the range
    if (offset >= sub.trackers.size()) {
      ++s.misrouted;
      return;
    }
    switch (sub.trackers[offset].record(h.seq)) {
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
    if (pending_[h.publisher]++ == 0) dirty_publishers_.push_back(h.publisher);
    if (timeline_.in_window(h.sent_ns)) {
      ++s.received_window;
      s.latency.record(now > h.sent_ns ? now - h.sent_ns : 0);
      if (o_.rate > 0) s.latency_from_schedule.record(now > h.due_ns ? now - h.due_ns : 0);
    }
  }

  void on_publish_done(Client& c, uint16_t, uint8_t, uint64_t) override {
    Pub& p = *pubs_[c.tag()];
    if (p.state == State::WaitQuota) resume(p);
  }

  void on_writable(Client& c) override {
    if (c.tag() & kSubscriberTag) return;
    Pub& p = *pubs_[c.tag()];
    if (p.state == State::WaitWrite) resume(p);
  }

  // Hands this iteration's deliveries to the publishers' counters, once per publisher.
  void on_io_done(uint64_t) override {
    if (dirty_publishers_.empty()) return;
    int64_t total = 0;
    for (uint32_t index : dirty_publishers_) {
      const uint32_t n = pending_[index];
      pending_[index] = 0;
      total += n;
      Shared::Publisher& sp = shared_.publishers[index];
      const uint64_t delivered = sp.delivered.fetch_add(n) + n;
      uint64_t wake_at = sp.wake_at.load();
      if (delivered >= wake_at && sp.wake_at.compare_exchange_strong(wake_at, kNoWake)) {
        wake_list(sp.owner).push_back(sp.local);
      }
    }
    dirty_publishers_.clear();
    shared_.outstanding.fetch_sub(total);
    for (auto& [owner, locals] : wakes_) {
      if (locals.empty()) continue;
      if (owner == this) {
        for (uint32_t local : locals)
          credit_arrived(*pubs_[local]);
      } else {
        owner->post(locals);
      }
      locals.clear();
    }
  }

  uint64_t on_tick(uint64_t now, Phase phase) override {
    if (!have_timeline_) start(now);
    if (inbox_nonempty_.load(std::memory_order_acquire)) {
      {
        std::lock_guard lock(inbox_mu_);
        inbox_scratch_.swap(inbox_);
        inbox_nonempty_.store(false, std::memory_order_relaxed);
      }
      for (uint32_t local : inbox_scratch_)
        credit_arrived(*pubs_[local]);
      inbox_scratch_.clear();
    }
    if (phase != Phase::Warmup && phase != Phase::Measure) {
      if (!stopped_publishing_ && !pubs_.empty()) {
        stopped_publishing_ = true;  // after this loop's last send, never before
        if (o_.rate > 0)
          count_behind_schedule(std::min(last_rate_tick_ns_, timeline_.measure_end_ns));
        shared_.publishing_loops.fetch_sub(1, std::memory_order_acq_rel);
      }
      return UINT64_MAX;
    }
    return o_.rate > 0 ? tick_rate(now) : tick_window(now);
  }

  bool drained() const override {
    for (const auto& p : pubs_) {
      if (p->client->inflight() > 0) return false;
    }
    if (shared_.publishing_loops.load(std::memory_order_acquire) > 0) return false;
    return shared_.outstanding.load(std::memory_order_acquire) <= 0;
  }

  bool has_publishers() const { return !pubs_.empty(); }

  bool finished_early() const override {
    if (o_.count == 0) return false;
    if (shared_.publishers_done.load(std::memory_order_acquire) < shared_.publisher_count) {
      return false;
    }
    // Every publisher is done: no more sends, whatever the phase.
    for (const auto& p : pubs_) {
      if (p->client->inflight() > 0) return false;
    }
    return shared_.outstanding.load(std::memory_order_acquire) <= 0;
  }

  void finish(ThreadStats& stats) override {
    for (const auto& p : pubs_)
      stats.unacked += p->client->inflight();
    for (const auto& p : pubs_) {
      stats.publishers.push_back({p->index, p->next_seq, p->sent_window, p->next_seq * p->fanout,
                                  p->sent_window * p->fanout});
    }
    for (Sub& sub : subs_) {
      for (size_t i = 0; i < sub.trackers.size(); ++i) {
        SequenceTracker& t = sub.trackers[i];
        if (t.unique() == 0 && t.duplicates() == 0) continue;
        StreamResult r;
        r.publisher = sub.first_publisher + static_cast<uint32_t>(i);
        r.receiver = sub.receiver;
        r.unique = t.unique();
        r.duplicates = t.duplicates();
        r.out_of_order = t.out_of_order();
        r.merge_bits = sub.shared;
        if (sub.shared) r.bits = t.take_bits();
        stats.streams.push_back(std::move(r));
      }
    }
  }

 private:
  enum class State : uint8_t { Runnable, WaitCredit, WaitQuota, WaitWrite, Scheduled, Done };

  struct Pub {
    uint32_t index = 0;
    uint64_t fanout = 0;  // receivers per message
    Client* client = nullptr;
    PublishTemplate tmpl;
    State state = State::Runnable;
    uint64_t next_seq = 0;  // also: messages sent so far
    uint64_t sent_window = 0;
    uint64_t forgiven = 0;  // deliveries written off by a QoS 0 stall
    uint64_t rate_start_ns = 0;
    uint64_t blocked_since_ns = 0;
    uint64_t blocked_delivered = 0;
    bool stall_counted = false;
  };

  struct Sub {
    Client* client = nullptr;
    uint32_t receiver = 0;
    uint32_t first_publisher = 0;
    bool shared = false;
    std::vector<SequenceTracker> trackers;  // by publisher - first_publisher
  };

  std::vector<uint32_t>& wake_list(Worker* owner) {
    for (auto& [w, list] : wakes_) {
      if (w == owner) return list;
    }
    wakes_.emplace_back(owner, std::vector<uint32_t>{});
    return wakes_.back().second;
  }

  void start(uint64_t now) {
    timeline_ = control_.timeline();
    have_timeline_ = true;
    next_stall_scan_ = now + kStallScanNs;
    for (uint32_t i = 0; i < pubs_.size(); ++i) {
      Pub& p = *pubs_[i];
      if (o_.rate > 0) {
        // Spread the publishers' schedules evenly over one interval.
        p.rate_start_ns = timeline_.publish_start_ns +
                          static_cast<uint64_t>(interval_ns_ * p.index / shared_.publisher_count);
        schedule(p, i);
      } else {
        runnable_.push_back(i);
      }
    }
  }

  uint64_t due(const Pub& p) const {
    return p.rate_start_ns + static_cast<uint64_t>(static_cast<double>(p.next_seq) * interval_ns_);
  }

  // Rate mode, once publishing has stopped: the messages whose slot came before `end` (the
  // loop's last publishing tick, or the end of the window if earlier) that were never sent.
  // They are in neither latency histogram, so they are counted: a publisher held back for the
  // last seconds would otherwise look on time. Slots after the last tick are not counted: they
  // are the loop's timer granularity, not the broker holding the publisher back.
  void count_behind_schedule(uint64_t end) {
    uint64_t behind = 0;
    for (const auto& p : pubs_) {
      if (p->state == State::Done || end <= p->rate_start_ns) continue;
      // Slots k with rate_start + k * interval < end.
      auto slots = static_cast<uint64_t>(
          std::ceil(static_cast<double>(end - p->rate_start_ns) / interval_ns_));
      if (o_.count > 0) slots = std::min(slots, o_.count);
      if (slots > p->next_seq) behind += slots - p->next_seq;
    }
    loop_.stats().behind_schedule += behind;
  }

  void schedule(Pub& p, uint32_t local) {
    p.state = State::Scheduled;
    timers_.push({due(p), local});
  }

  // p may send again (quota or socket freed).
  void resume(Pub& p) {
    const uint32_t local = shared_.publishers[p.index].local;
    if (o_.rate > 0) {
      schedule(p, local);
    } else {
      p.state = State::Runnable;
      runnable_.push_back(local);
    }
  }

  void credit_arrived(Pub& p) {
    if (p.state == State::WaitCredit) resume(p);
  }

  void mark_done(Pub& p) {
    p.state = State::Done;
    shared_.publishers_done.fetch_add(1, std::memory_order_release);
  }

  // Appends up to max messages with one timestamp (the batch goes out in the send() right
  // after). Leaves p in WaitQuota / WaitWrite / Done when that stopped it. Each message carries
  // its due time too: its slot in the schedule in rate mode, the send time otherwise.
  uint64_t send_batch(Pub& p, uint64_t max, size_t max_pending) {
    const uint64_t ts = now_ns();
    uint64_t n = 0;
    while (n < max && p.client->pending_output() < max_pending) {
      if (o_.count > 0 && p.next_seq >= o_.count) break;
      const uint64_t due_ns = o_.rate > 0 ? due(p) : ts;
      if (!loop_.publish(*p.client, p.tmpl, PayloadHeader{p.index, p.next_seq, ts, due_ns})) {
        p.state = State::WaitQuota;  // PUBACKs resume it
        break;
      }
      ++p.next_seq;
      ++n;
    }
    if (n > 0) {
      ThreadStats& s = loop_.stats();
      s.sent_total += n;
      if (timeline_.in_window(ts)) {
        s.sent_window += n;
        p.sent_window += n;
      }
      // Counted before the bytes leave, so a receipt can never make it go negative.
      shared_.outstanding.fetch_add(static_cast<int64_t>(n * p.fanout), std::memory_order_acq_rel);
      loop_.flush(*p.client);
    }
    if (p.state != State::WaitQuota && p.client->write_blocked()) p.state = State::WaitWrite;
    if (o_.count > 0 && p.next_seq >= o_.count && p.state != State::Done) mark_done(p);
    return n;
  }

  // Unlimited mode: every runnable publisher fills its window.
  uint64_t tick_window(uint64_t now) {
    if (now >= next_stall_scan_) scan_stalls(now);
    for (size_t i = 0; i < runnable_.size();) {
      Pub& p = *pubs_[runnable_[i]];
      if (p.state == State::Runnable) fill_window(p, now);
      if (p.state == State::Runnable) {
        ++i;
      } else {
        runnable_[i] = runnable_.back();  // order does not matter
        runnable_.pop_back();
      }
    }
    // Runnable publishers were stopped only by the output cap: go again at once.
    return runnable_.empty() ? next_stall_scan_ : 0;
  }

  // In deliveries: sent x fan-out not yet delivered (nor written off).
  uint64_t outstanding(const Pub& p, uint64_t delivered) const {
    const uint64_t due = p.next_seq * p.fanout;
    return due > delivered + p.forgiven ? due - delivered - p.forgiven : 0;
  }

  void fill_window(Pub& p, uint64_t now) {
    if (p.fanout == 0) {  // nobody listens: nothing to wait for
      send_batch(p, UINT64_MAX, kMaxPendingUnlimited);
      return;
    }
    Shared::Publisher& sp = shared_.publishers[p.index];
    const uint64_t limit = uint64_t{window_} * p.fanout;
    uint64_t delivered = sp.delivered.load(std::memory_order_relaxed);
    uint64_t out = outstanding(p, delivered);
    if (out + p.fanout > limit) {
      // Full: park until resume_room_ messages' worth is delivered. Publish the threshold,
      // then look again: a subscriber loop that added deliveries in between either sees the
      // threshold (and posts us) or we see its deliveries here.
      const uint64_t target = uint64_t{window_ - resume_room_} * p.fanout;
      const uint64_t wake_at = p.next_seq * p.fanout - p.forgiven - target;
      sp.wake_at.store(wake_at);
      delivered = sp.delivered.load();
      if (delivered < wake_at) {
        block(p, now, delivered);
        return;
      }
      uint64_t expected = wake_at;
      if (!sp.wake_at.compare_exchange_strong(expected, kNoWake)) {
        block(p, now, delivered);  // a subscriber loop already posted us
        return;
      }
      out = outstanding(p, delivered);
    }
    send_batch(p, (limit - out) / p.fanout, kMaxPendingUnlimited);
  }

  void block(Pub& p, uint64_t now, uint64_t delivered) {
    p.state = State::WaitCredit;
    if (p.blocked_delivered != delivered || p.blocked_since_ns == 0) {
      p.blocked_since_ns = now;
      p.blocked_delivered = delivered;
      p.stall_counted = false;
    }
  }

  // A full window with nothing delivered for --stall-timeout is a stall, counted once per
  // episode. At QoS 0 the broker may legitimately have dropped what is in flight: write it off
  // so the window reopens (the loss shows in the lost count). At QoS 1/2 the broker took
  // responsibility for those messages: they are late, not gone, and sending more would only
  // pile onto a broker that is already behind.
  void scan_stalls(uint64_t now) {
    next_stall_scan_ = now + std::min(kStallScanNs, stall_timeout_ns_);
    for (uint32_t i = 0; i < pubs_.size(); ++i) {
      Pub& p = *pubs_[i];
      if (p.state != State::WaitCredit) continue;
      Shared::Publisher& sp = shared_.publishers[p.index];
      const uint64_t delivered = sp.delivered.load(std::memory_order_relaxed);
      if (delivered != p.blocked_delivered) {
        p.blocked_delivered = delivered;
        p.blocked_since_ns = now;
        p.stall_counted = false;
        continue;
      }
      if (now - p.blocked_since_ns < stall_timeout_ns_) continue;
      if (!p.stall_counted) ++loop_.stats().window_stalls;
      p.stall_counted = true;
      if (o_.qos != 0 || o_.sub_qos != 0) continue;
      uint64_t expected = sp.wake_at.load();
      if (expected != kNoWake && sp.wake_at.compare_exchange_strong(expected, kNoWake)) {
        p.forgiven += outstanding(p, delivered);
        p.blocked_since_ns = 0;
        resume(p);
      }
    }
  }

  // Rate mode: message k of a publisher is due at its start + k / rate. Whatever is due goes
  // out, so a late wake-up catches up rather than lowering the rate.
  uint64_t tick_rate(uint64_t now) {
    last_rate_tick_ns_ = now;
    while (!timers_.empty() && timers_.top().first <= now) {
      const uint32_t local = timers_.top().second;
      timers_.pop();
      Pub& p = *pubs_[local];
      if (p.state != State::Scheduled) continue;
      p.state = State::Runnable;
      const uint64_t ts = now_ns();
      // Messages due by ts; at least the one whose timer fired, whatever the rounding.
      const auto last_due = static_cast<uint64_t>(
          static_cast<double>(ts - std::min(ts, p.rate_start_ns)) / interval_ns_);
      const uint64_t owed =
          std::max<uint64_t>(1, last_due + 1 > p.next_seq ? last_due + 1 - p.next_seq : 0);
      if (p.client->write_blocked()) {
        p.state = State::WaitWrite;  // on_writable reschedules it
        continue;
      }
      send_batch(p, owed, kMaxPendingRate);
      if (p.state == State::Runnable) schedule(p, local);
    }
    return timers_.empty() ? UINT64_MAX : timers_.top().first;
  }

  ClientLoop& loop_;
  RunControl& control_;
  Shared& shared_;
  const CommonOptions& o_;
  const uint32_t window_;
  uint32_t resume_room_ = 1;
  std::vector<std::unique_ptr<Pub>> pubs_;
  std::vector<Sub> subs_;
  Timeline timeline_;
  bool have_timeline_ = false;
  bool stopped_publishing_ = false;
  double interval_ns_ = 0;
  uint64_t last_rate_tick_ns_ = 0;  // rate mode: when tick_rate last ran
  uint64_t stall_timeout_ns_ = 0;
  uint64_t next_stall_scan_ = 0;

  std::vector<uint32_t> runnable_;              // unlimited mode: local publishers that may send
  using Timer = std::pair<uint64_t, uint32_t>;  // due time, local publisher
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;

  // Deliveries this iteration, by global publisher index, and which entries are non-zero.
  std::vector<uint32_t> pending_;
  std::vector<uint32_t> dirty_publishers_;
  // Publishers to wake, by owner. Few loops: a linear list needs no hashing.
  std::vector<std::pair<Worker*, std::vector<uint32_t>>> wakes_;

  std::mutex inbox_mu_;
  std::vector<uint32_t> inbox_;
  std::vector<uint32_t> inbox_scratch_;
  std::atomic<bool> inbox_nonempty_{false};
};

TrafficScenario::TrafficScenario(const CommonOptions& common)
    : common_(common), shared_(std::make_unique<Shared>()) {}

TrafficScenario::~TrafficScenario() = default;

void TrafficScenario::setup(const std::vector<ClientLoop*>& loops, RunControl& control) {
  const Topology t = topology(static_cast<unsigned>(loops.size()));
  shared_->publisher_count = static_cast<uint32_t>(t.publishers.size());
  shared_->publishers = std::make_unique<Shared::Publisher[]>(t.publishers.size());

  // Fan-out of each publisher: how many receivers expect its messages (difference array over
  // the receivers' publisher ranges).
  std::vector<int64_t> delta(t.publishers.size() + 1, 0);
  for (const auto& r : t.receivers) {
    delta[r.first_publisher] += 1;
    delta[r.first_publisher + r.publisher_count] -= 1;
  }
  std::vector<uint64_t> fanout(t.publishers.size(), 0);
  int64_t running = 0;
  for (size_t i = 0; i < t.publishers.size(); ++i) {
    running += delta[i];
    fanout[i] = static_cast<uint64_t>(running);
  }

  // The pid keeps client ids unique when two benches share a broker.
  const std::string prefix = common_.client_id_prefix.empty()
                                 ? "sbench-" + std::to_string(::getpid())
                                 : common_.client_id_prefix;
  for (ClientLoop* loop : loops) {
    workers_.push_back(std::make_unique<Worker>(*loop, control, *shared_, common_, window()));
    loop->set_handler(workers_.back().get());
  }
  for (uint32_t i = 0; i < t.publishers.size(); ++i) {
    const auto& p = t.publishers[i];
    workers_[p.loop % workers_.size()]->add_publisher(i, p.topic, fanout[i], prefix);
  }
  for (uint32_t i = 0; i < t.subscribers.size(); ++i) {
    const auto& s = t.subscribers[i];
    workers_[s.loop % workers_.size()]->add_subscriber(i, s, t.receivers[s.receiver], prefix);
  }
  for (const auto& w : workers_)
    shared_->publishing_loops.fetch_add(w->has_publishers() ? 1 : 0, std::memory_order_relaxed);
}

void TrafficScenario::describe(Report& report) const {
  describe_params(report);
  report.has_schedule_latency = true;
  if (common_.rate == 0) report.params.emplace_back("window", static_cast<int64_t>(window()));
  if (common_.count > 0) report.params.emplace_back("count", static_cast<int64_t>(common_.count));
}

}  // namespace starling::bench
