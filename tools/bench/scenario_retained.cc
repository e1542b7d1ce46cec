#include "scenario_retained.h"

#include <unistd.h>

#include <algorithm>

namespace starling::bench {

class RetainedScenario::Worker : public LoopHandler {
 public:
  Worker(ClientLoop& loop, RunControl& control, const CommonOptions& o, const RetainedOptions& r,
         const std::string& base, std::atomic<int>& active, std::atomic<int>& starting)
      : loop_(loop),
        control_(control),
        o_(o),
        r_(r),
        base_(base),
        active_(active),
        starting_(starting) {}

  bool has_subscribers() const { return !subs_.empty(); }

  void add_loader(const std::string& client_id) {
    ClientSpec spec;
    spec.client_id = client_id;
    spec.defer_ready = true;  // ready once every retained message is acknowledged
    loader_ = &loop_.add_client(std::move(spec));
  }

  void add_subscriber(const std::string& client_id) {
    ClientSpec spec;
    spec.client_id = client_id;
    spec.tag = static_cast<uint32_t>(subs_.size());
    Sub s;
    s.client = &loop_.add_client(std::move(spec));
    subs_.push_back(std::move(s));
  }

  void on_client_ready(Client& c, uint64_t) override {
    if (&c == loader_) load_more();
  }

  void on_publish_done(Client& c, uint16_t, uint8_t, uint64_t now) override {
    if (&c != loader_) return;
    ++acked_;
    if (!cleaning_) {
      if (acked_ == r_.retained) {
        load_s_ = static_cast<double>(now - load_start_ns_) / 1e9;
        loop_.mark_ready(*loader_);
      }
      load_more();
    } else {
      clean_more();
    }
  }

  void on_message(Client& c, const mqtt::Publish& msg, uint64_t now) override {
    ThreadStats& s = loop_.stats();
    if (&c == loader_ || msg.payload.empty()) return;  // deletions reach late subscribers
    Sub& sub = subs_[c.tag()];
    PayloadHeader h;
    if (!read_payload_header(msg.payload, h)) {
      ++s.bad_payload;
      return;
    }
    if (sub.state != SubState::Subscribed && sub.state != SubState::Subscribing) {
      ++s.misrouted;  // not subscribed: nothing should arrive
      return;
    }
    if (h.publisher != 0 || h.seq >= r_.retained || !msg.retain) {
      ++s.misrouted;
      return;
    }
    if (sub.round.record(h.seq) == SequenceTracker::Outcome::Duplicate) {
      ++s.duplicates;
      return;
    }
    ++s.received_total;
    if (timeline_.in_window(now)) ++s.received_window;
    if (sub.round.unique() == r_.retained) {
      end_round(sub, now);
      sub.state = SubState::Unsubscribing;
      loop_.unsubscribe(*sub.client, {filter()});
    }
  }

  void on_suback(Client& c, uint16_t, uint64_t) override {
    Sub& sub = subs_[c.tag()];
    if (sub.state == SubState::Subscribing) sub.state = SubState::Subscribed;
  }

  void on_unsuback(Client& c, uint16_t, uint64_t) override {
    Sub& sub = subs_[c.tag()];
    sub.state = SubState::Idle;
    active_.fetch_sub(1, std::memory_order_acq_rel);
  }

  uint64_t on_tick(uint64_t now, Phase phase) override {
    if (!have_timeline_) {
      timeline_ = control_.timeline();
      have_timeline_ = true;
    }
    if (phase == Phase::Warmup || phase == Phase::Measure) {
      for (Sub& sub : subs_) {
        if (sub.state != SubState::Idle) continue;
        sub.round = SequenceTracker();
        sub.round_start_ns = now;
        sub.state = SubState::Subscribing;
        active_.fetch_add(1, std::memory_order_acq_rel);
        ++rounds_started_;
        if (timeline_.in_window(now)) ++rounds_started_window_;
        mqtt::SubscriptionRequest req;
        req.filter = filter();
        req.qos = o_.sub_qos;
        loop_.subscribe(*sub.client, {req});
      }
      return UINT64_MAX;
    }
    if (!stopped_starting_ && !subs_.empty()) {
      stopped_starting_ = true;  // no round starts on this loop any more
      starting_.fetch_sub(1, std::memory_order_acq_rel);
    }
    // Drain: delete the retained messages once every loop has stopped starting rounds and every
    // round has ended, or half way through the drain time if some never end (the broker lost
    // messages), so nothing is left behind.
    if (loader_ != nullptr && !cleaning_ && phase == Phase::Drain) {
      const uint64_t half =
          timeline_.measure_end_ns + (timeline_.drain_end_ns - timeline_.measure_end_ns) / 2;
      const bool quiet = starting_.load(std::memory_order_acquire) == 0 &&
                         active_.load(std::memory_order_acquire) == 0;
      if (quiet || now >= half) {
        cleaning_ = true;
        acked_ = 0;
        next_ = 0;
        clean_more();
      } else {
        return std::min<uint64_t>(half, now + 10'000'000);
      }
    }
    return UINT64_MAX;
  }

  bool drained() const override {
    for (const Sub& sub : subs_) {
      if (sub.state != SubState::Idle) return false;
    }
    return loader_ == nullptr || (cleaning_ && acked_ == r_.retained);
  }

  void finish(ThreadStats& stats) override {
    // Rounds cut off by the end of the drain count what they missed as lost.
    uint64_t unique = 0, duplicates = 0;
    for (Sub& sub : subs_) {
      if (sub.state == SubState::Subscribing || sub.state == SubState::Subscribed) {
        unique += sub.round.unique();
        duplicates += sub.round.duplicates();
      }
    }
    unique += unique_done_;
    duplicates += duplicates_done_;
    const uint64_t expected = rounds_started_ * r_.retained;
    stats.publishers.push_back({0, loader_ != nullptr ? r_.retained : 0u, 0, expected,
                                rounds_started_window_ * r_.retained});
    StreamResult st;
    st.publisher = 0;
    st.receiver = static_cast<uint32_t>(loop_.index());
    st.unique = unique;
    st.duplicates = duplicates;
    stats.streams.push_back(std::move(st));
  }

  uint64_t rounds_done() const { return rounds_done_; }
  uint64_t rounds_started() const { return rounds_started_; }
  double load_s() const { return load_s_; }

 private:
  enum class SubState : uint8_t { Idle, Subscribing, Subscribed, Unsubscribing };
  struct Sub {
    Client* client = nullptr;
    SubState state = SubState::Idle;
    SequenceTracker round;
    uint64_t round_start_ns = 0;
  };

  std::string filter() const { return base_ + "/+"; }

  void end_round(Sub& sub, uint64_t now) {
    ++rounds_done_;
    unique_done_ += sub.round.unique();
    duplicates_done_ += sub.round.duplicates();
    // Rounds that began in the window give the round-time distribution.
    if (timeline_.in_window(sub.round_start_ns)) {
      loop_.stats().latency.record(now - sub.round_start_ns);
    }
  }

  // Keeps the loader's QoS 1 window full while loading.
  void load_more() {
    if (load_start_ns_ == 0) load_start_ns_ = now_ns();
    while (next_ < r_.retained) {
      mqtt::Publish p;
      p.topic = base_ + "/" + std::to_string(next_);
      p.qos = 1;
      p.retain = true;
      p.payload.assign(std::max<uint32_t>(o_.payload, kPayloadHeaderSize), '.');
      const uint64_t now = now_ns();
      write_payload_header(p.payload.data(), PayloadHeader{0, next_, now, now});
      if (!loop_.publish_packet(*loader_, p)) break;  // PUBACKs call us again
      ++next_;
      ++loop_.stats().sent_total;
    }
  }

  // Empty retained payloads delete the messages.
  void clean_more() {
    while (next_ < r_.retained) {
      mqtt::Publish p;
      p.topic = base_ + "/" + std::to_string(next_);
      p.qos = 1;
      p.retain = true;
      if (!loop_.publish_packet(*loader_, p)) break;
      ++next_;
    }
  }

  ClientLoop& loop_;
  RunControl& control_;
  const CommonOptions& o_;
  const RetainedOptions& r_;
  const std::string& base_;
  std::atomic<int>& active_;
  std::atomic<int>& starting_;
  bool stopped_starting_ = false;
  Timeline timeline_;
  bool have_timeline_ = false;

  Client* loader_ = nullptr;
  uint32_t next_ = 0;
  uint32_t acked_ = 0;
  bool cleaning_ = false;
  uint64_t load_start_ns_ = 0;
  double load_s_ = 0;

  std::vector<Sub> subs_;
  uint64_t rounds_started_ = 0;
  uint64_t rounds_started_window_ = 0;
  uint64_t rounds_done_ = 0;
  uint64_t unique_done_ = 0;
  uint64_t duplicates_done_ = 0;
};

RetainedScenario::RetainedScenario(const CommonOptions& common, const RetainedOptions& opts)
    : common_(common), opts_(opts) {
  // The pid keeps two runs on one broker from seeing each other's retained messages.
  topic_base_ = common_.topic_prefix + "/retained/" + std::to_string(::getpid());
}

RetainedScenario::~RetainedScenario() = default;

void RetainedScenario::setup(const std::vector<ClientLoop*>& loops, RunControl& control) {
  const std::string prefix = "sbench-" + std::to_string(::getpid());
  for (ClientLoop* loop : loops) {
    workers_.push_back(std::make_unique<Worker>(*loop, control, common_, opts_, topic_base_,
                                                active_rounds_, starting_loops_));
    loop->set_handler(workers_.back().get());
  }
  workers_[0]->add_loader(prefix + "-loader");
  for (uint32_t i = 0; i < opts_.subscribers; ++i) {
    // Subscribers start on the last loop, away from the loader.
    workers_[(workers_.size() - 1 + i) % workers_.size()]->add_subscriber(prefix + "-sub-" +
                                                                          std::to_string(i));
  }
  for (const auto& w : workers_)
    starting_loops_.fetch_add(w->has_subscribers() ? 1 : 0, std::memory_order_relaxed);
}

void RetainedScenario::describe(Report& report) const {
  report.params.emplace_back("retained", static_cast<int64_t>(opts_.retained));
  report.params.emplace_back("subscribers", static_cast<int64_t>(opts_.subscribers));
  report.latency_label = "round: SUBSCRIBE to last retained message";
  report.schedule = "subscribers repeat SUBSCRIBE, receive all, UNSUBSCRIBE";
}

void RetainedScenario::summarize(Report& report) const {
  uint64_t started = 0, done = 0;
  double load_s = 0;
  for (const auto& w : workers_) {
    started += w->rounds_started();
    done += w->rounds_done();
    load_s = std::max(load_s, w->load_s());
  }
  report.results.push_back({"rounds", static_cast<double>(done), "",
                            "rounds completed (every retained message received)"});
  report.results.push_back({"rounds_incomplete", static_cast<double>(started - done), "",
                            "rounds that never received every retained message"});
  report.results.push_back({"load_s", load_s, "s", "storing the retained messages (QoS 1)"});
}

}  // namespace starling::bench
