#include "cluster/cluster.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <unordered_set>

#include "cluster/log_reader.h"
#include "cluster/message_records.h"
#include "cluster/wire/records.h"
#include "metrics/prometheus.h"
#include "mqtt/topic.h"
#include "store/records.h"

namespace starling::cluster {

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool shared_filter(const std::string& filter) {
  return filter.starts_with("$share/");
}

// How long (in node_timeout_ms) a node passes late messages on to a session that moved away.
constexpr int64_t kRelayWindowFactor = 6;

// The client whose session is handed over (on the log reader's thread, in on_claim): the
// routes its subscriptions leave are kept (Cluster::Departed) instead of removed.
thread_local const std::string* t_departing = nullptr;

}  // namespace

uint64_t cluster_record_limit(const config::Config& config) {
  // A forward carries the packet's topic, payload and properties plus a few ids.
  return std::max<uint64_t>(1000000, uint64_t{config.mqtt.max_packet_size} + 64 * 1024);
}

config::KafkaSettings kafka_settings_for_cluster(const config::Config& config) {
  config::KafkaSettings kafka = config.kafka;
  auto named = [](const config::PropertyList& list) {
    return std::any_of(list.begin(), list.end(),
                       [](const auto& p) { return p.first == "message.max.bytes"; });
  };
  if (!named(kafka.properties) && !named(kafka.producer_properties)) {
    kafka.producer_properties.emplace_back("message.max.bytes",
                                           std::to_string(cluster_record_limit(config)));
  }
  return kafka;
}

Topics::Topics(const std::string& cluster_name)
    : nodes("starling." + cluster_name + ".nodes"),
      routes("starling." + cluster_name + ".routes"),
      sessions("starling." + cluster_name + ".sessions"),
      retained("starling." + cluster_name + ".retained"),
      prefix("starling." + cluster_name + ".") {}

Cluster::Cluster(const config::Config& config, broker::Broker& broker)
    : settings_(config.cluster),
      node_id_(config.cluster.node_id),
      topics_(config.cluster.name),
      epoch_(broker::wall_clock_ms()),
      broker_(broker) {
  if (config.http.enabled) http_address_ = config::to_string(config.http.bind);
  self_ = number_of(node_id_);
  nodes_[self_].epoch = epoch_;
  nodes_[self_].http = http_address_;
}

Cluster::~Cluster() {
  stop_reading();
}

NodeNumber Cluster::number_of(const std::string& id) {
  auto [it, fresh] = numbers_.emplace(id, static_cast<NodeNumber>(nodes_.size()));
  if (fresh) {
    nodes_.emplace_back();
    nodes_.back().id = id;
    nodes_.back().inbox = topics_.inbox(id);
  }
  return it->second;
}

void Cluster::start(kafka::Producer& producer, const std::string& bootstrap) {
  producer_ = &producer;
  // Room for the record's own fields under the record limit.
  handover_budget_ = cluster_record_limit(*broker_.settings()) - 32 * 1024;
  reader_ = std::make_unique<LogReader>(*this, broker_.settings()->kafka, bootstrap,
                                        settings_.inbox_partitions);
  reader_->create_topics();
  {
    // The routes of the restored sessions; from now on each change is written as it happens.
    std::lock_guard lock(local_mutex_);
    routes_written_ = true;
    for (const auto& [filter, count] : local_counts_)
      write_route(filter, count);
  }
  heartbeat();
  reader_->start();
  spdlog::info("cluster '{}': node '{}' (epoch {}) reading {}*", settings_.name, node_id_, epoch_,
               topics_.prefix);
}

void Cluster::stop_reading() {
  if (reader_) reader_->stop();
}

void Cluster::leave() {
  if (producer_) heartbeat(true);
}

void Cluster::heartbeat(bool leaving) {
  HeartbeatRecord hb;
  hb.epoch = epoch_;
  hb.sent_ms = broker::wall_clock_ms();
  hb.interval_ms = settings_.heartbeat_ms;
  hb.http = http_address_;
  hb.leaving = leaving;
  if (reader_) reader_->positions(hb.routes_read, hb.retained_read);
  broker::PublishOutcome unused;
  producer_->enqueue({topics_.nodes, node_id_, encode(hb), false},
                     kafka::Producer::Delivery::Unstored, {}, nullptr, unused);
}

void Cluster::write_route(const std::string& filter, uint32_t members,
                          std::shared_ptr<RouteBarrier> barrier) {
  kafka::Producer::OwnRecord record{topics_.routes, route_key(node_id_, filter), {}, members == 0};
  if (members > 0) record.value = encode(RouteRecord{epoch_, members});
  if (barrier) {
    record.delivered = [this, barrier](int32_t partition, int64_t offset) {
      {
        std::lock_guard lock(local_mutex_);
        barrier->partition = partition;
        barrier->offset = offset;
      }
      check_barriers();
    };
  }
  broker::PublishOutcome unused;
  producer_->enqueue(std::move(record), kafka::Producer::Delivery::Unstored, {}, nullptr, unused);
}

kafka::Producer::Delivery Cluster::delivery_for(const broker::Message& msg) const {
  // QoS 0 was promised nothing: its forward is not written to the store (unless retained: the
  // retained log is every node's copy).
  if (msg.qos == 0 && !msg.retain) return kafka::Producer::Delivery::Volatile;
  if (settings_.ack == "kafka") return kafka::Producer::Delivery::Sync;
  return kafka::Producer::Delivery::Buffered;
}

// --- broker::ClusterLink ----------------------------------------------------------------------

void Cluster::forward(const broker::MessagePtr& msg,
                      std::vector<broker::SharedGroup*>& local_groups,
                      broker::Attachment publisher_link, broker::PublishBatch* durable,
                      broker::PublishOutcome& outcome) {
  if (producer_ == nullptr) return;             // restoring: nothing is published yet
  if (msg->topic.starts_with("$SYS/")) return;  // every node publishes its own
  const kafka::Producer::Delivery delivery = delivery_for(*msg);
  if (msg->retain) {
    MessageRecord retained = to_message_record(*msg, node_id_);
    kafka::Producer::OwnRecord record{topics_.retained, msg->topic, encode(retained), false};
    if (others_up()) {
      // The publish is acknowledged (and its publisher's later ones) once every node that is
      // up has read the record: a subscriber anywhere after that gets it (the retained barrier).
      auto barrier = std::make_shared<RouteBarrier>();
      barrier->retained = true;
      barrier->deadline_ms = steady_ms() + settings_.node_timeout_ms;
      if (!outcome.gate) outcome.gate = std::make_shared<broker::AckGate>();
      outcome.gate->expect();
      barrier->gates.push_back(outcome.gate);
      record.delivered = [this, barrier](int32_t partition, int64_t offset) {
        {
          std::lock_guard lock(local_mutex_);
          barrier->partition = partition;
          barrier->offset = offset;
        }
        check_barriers();
      };
      std::lock_guard lock(local_mutex_);
      log_barriers_.push_back(std::move(barrier));
    }
    producer_->enqueue(std::move(record), delivery, publisher_link, durable, outcome);
  }

  // Destination nodes, each with the shared groups it was picked for.
  thread_local RouteTable::Match match;
  thread_local std::vector<std::pair<NodeNumber, std::vector<std::string>>> destinations;
  match.clear();
  destinations.clear();
  std::shared_lock lock(state_lock_);
  routes_.match(msg->topic, match);
  // A session that moved away from here a moment ago: what is published here for it is
  // passed on to its new node unless that node gets it anyway (relay()).
  auto pass_on = [&] {
    if (!any_departed_.load(std::memory_order_relaxed)) return;
    MessageRecord record = to_message_record(*msg, node_id_);
    for (const auto& [node, groups] : destinations)
      if (std::binary_search(match.plain.begin(), match.plain.end(), node))
        record.also.push_back(nodes_[node].id);
    relay(record, durable);
  };
  if (match.plain.empty() && match.groups.empty()) {
    pass_on();
    return;
  }
  auto destination = [](NodeNumber node) -> std::vector<std::string>& {
    for (auto& [n, groups] : destinations)
      if (n == node) return groups;
    destinations.emplace_back(node, std::vector<std::string>());
    return destinations.back().second;
  };
  for (NodeNumber node : match.plain)
    if (node != self_) destination(node);
  for (RouteTable::GroupMatch& g : match.groups) {
    // One member cluster-wide: nodes weighted by their member counts, this node by its own
    // (the local tree is the truth for it, the log may lag).
    auto local = std::find_if(local_groups.begin(), local_groups.end(),
                              [&g](const broker::SharedGroup* lg) { return lg->key == *g.key; });
    const uint32_t local_members =
        local == local_groups.end() ? 0 : static_cast<uint32_t>((*local)->members.size());
    // Nodes that are up share the group's messages; a node that is down only gets them when
    // nobody else has members (they wait in its inbox for its persistent members).
    bool any_up = local_members > 0;
    for (const auto& [node, members] : g.members)
      any_up |= node != self_ && up_locked(nodes_[node]);
    auto counts = [&](NodeNumber node) {
      return node != self_ && (!any_up || up_locked(nodes_[node]));
    };
    uint64_t total = local_members;
    for (const auto& [node, members] : g.members)
      if (counts(node)) total += members;
    if (total == local_members) continue;  // nobody elsewhere: the local pick stands
    uint64_t ticket = g.cursor->fetch_add(1, std::memory_order_relaxed) % total;
    if (ticket < local_members) continue;
    ticket -= local_members;
    for (const auto& [node, members] : g.members) {
      if (!counts(node)) continue;
      if (ticket < members) {
        destination(node).push_back(*g.key);
        if (local != local_groups.end()) local_groups.erase(local);
        break;
      }
      ticket -= members;
    }
  }
  if (destinations.empty()) {
    pass_on();
    return;
  }
  MessageRecord record = to_message_record(*msg, node_id_);
  if (destinations.size() > 1) {
    for (const auto& [node, groups] : destinations)
      record.also.push_back(nodes_[node].id);
  }
  const std::string key = msg->origin_client_id.empty() ? msg->topic : msg->origin_client_id;
  for (auto& [node, groups] : destinations) {
    record.plain = std::binary_search(match.plain.begin(), match.plain.end(), node);
    record.groups = std::move(groups);
    NodeState& to = nodes_[node];
    const bool refused_before = outcome.refused;
    producer_->enqueue({to.inbox, key, encode(record), false}, delivery, publisher_link, durable,
                       outcome);
    if (outcome.refused && !refused_before) break;  // the buffer is full: the publisher is told
    to.forwards.fetch_add(1, std::memory_order_relaxed);
    ++outcome.receivers;
  }
  pass_on();
}

void Cluster::subscription_added(const std::string& filter,
                                 std::shared_ptr<broker::AckGate>* wait) {
  // Whether another node is up to wait for (outside local_mutex_: see check_barriers).
  const bool others_up = this->others_up();
  std::lock_guard lock(local_mutex_);
  uint32_t& count = local_counts_[filter];
  ++count;
  if (!routes_written_) return;
  if (count == 1 || shared_filter(filter)) {
    std::shared_ptr<RouteBarrier> barrier;
    if (others_up) {
      barrier = std::make_shared<RouteBarrier>();
      barrier->deadline_ms = steady_ms() + settings_.node_timeout_ms;
      std::shared_ptr<RouteBarrier>& slot = barriers_[filter];
      // SUBACKs still waiting for an earlier record of this route wait for the newer one.
      if (slot) barrier->gates = std::move(slot->gates);
      slot = barrier;
    }
    write_route(filter, count, barrier);
  }
  // A SUBACK waits for the route's barrier, also when another session's SUBSCRIBE made it.
  if (wait == nullptr) return;
  auto it = barriers_.find(filter);
  if (it == barriers_.end()) return;
  if (!*wait) *wait = std::make_shared<broker::AckGate>();
  (*wait)->expect();
  it->second->gates.push_back(*wait);
}

void Cluster::check_barriers() {
  // The nodes' positions first, then the barriers: local_mutex_ is never held while waiting
  // for state_lock_.
  struct Read {
    std::map<int32_t, int64_t> routes, retained;
  };
  std::vector<Read> positions;
  {
    std::shared_lock lock(state_lock_);
    for (size_t i = 0; i < nodes_.size(); ++i)
      if (i != self_ && up_locked(nodes_[i]))
        positions.push_back(Read{nodes_[i].routes_read, nodes_[i].retained_read});
  }
  std::vector<std::shared_ptr<broker::AckGate>> open;
  const int64_t now = steady_ms();
  auto passed = [&](const RouteBarrier& b) {
    if (now >= b.deadline_ms) return true;
    if (b.offset < 0) return false;
    return std::all_of(positions.begin(), positions.end(), [&b](const Read& r) {
      const auto& read = b.retained ? r.retained : r.routes;
      auto p = read.find(b.partition);
      return p != read.end() && p->second > b.offset;
    });
  };
  auto take_gates = [&open](RouteBarrier& b) {
    for (auto& gate : b.gates)
      open.push_back(std::move(gate));
  };
  {
    std::lock_guard lock(local_mutex_);
    for (auto it = barriers_.begin(); it != barriers_.end();) {
      if (passed(*it->second)) {
        take_gates(*it->second);
        it = barriers_.erase(it);
      } else {
        ++it;
      }
    }
    std::erase_if(log_barriers_, [&](const std::shared_ptr<RouteBarrier>& b) {
      if (!passed(*b)) return false;
      take_gates(*b);
      return true;
    });
  }
  for (auto& gate : open)
    gate->settle();
}

void Cluster::subscription_removed(const std::string& filter) {
  std::lock_guard lock(local_mutex_);
  if (t_departing != nullptr && !shared_filter(filter)) {
    if (auto d = departed_.find(*t_departing); d != departed_.end()) {
      d->second.filters.push_back(filter);
      d->second.ghosts.push_back(filter);
      return;
    }
  }
  auto it = local_counts_.find(filter);
  if (it == local_counts_.end()) return;
  const uint32_t count = --it->second;
  if (count == 0) local_counts_.erase(it);
  if (routes_written_ && (count == 0 || shared_filter(filter))) write_route(filter, count);
}

bool Cluster::others_up() const {
  std::shared_lock lock(state_lock_);
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (i != self_ && up_locked(nodes_[i])) return true;
  return false;
}

bool Cluster::up_locked(const NodeState& n) const {
  return !n.leaving && n.last_seen_ms >= 0 &&
         steady_ms() - n.last_seen_ms <= static_cast<int64_t>(settings_.node_timeout_ms);
}

void Cluster::write_claim(const std::string& client_id, bool clean_start, uint32_t expiry,
                          std::function<void()> delivered) {
  {
    std::lock_guard lock(local_mutex_);
    ++pending_claims_[client_id];
  }
  ClaimRecord claim{node_id_, epoch_, broker::wall_clock_ms(), clean_start, expiry};
  kafka::Producer::OwnRecord record{topics_.sessions, client_id, encode(claim), false};
  if (delivered)
    record.delivered = [delivered = std::move(delivered)](int32_t, int64_t) { delivered(); };
  broker::PublishOutcome unused;
  producer_->enqueue(std::move(record), kafka::Producer::Delivery::Unstored, {}, nullptr, unused);
}

bool Cluster::await_session(const std::string& client_id, bool clean_start, uint32_t expiry,
                            broker::Attachment link) {
  if (producer_ == nullptr) return false;
  const bool others_up = this->others_up();
  if (!others_up) return false;  // alone: the claim goes out with the session, nobody to wait for
  broker::Attachment earlier;
  {
    std::lock_guard lock(local_mutex_);
    claimed_[client_id] = link;
    Waiting& w = waiting_[client_id];
    earlier = w.link;  // a CONNECT of the same client id here a moment ago goes on (and is
                       // taken over by this one)
    w = Waiting{link, steady_ms() + settings_.node_timeout_ms, clean_start, false};
  }
  if (earlier) broker_.connections().cluster_wait_over(earlier);
  // The connection goes on once this claim is read back from the log (on_claim): every earlier
  // claim of the client id (same key, same partition) has been read by then, so the node that
  // held its session is known, and a CONNECT elsewhere after it takes over from this one.
  write_claim(client_id, clean_start, expiry, nullptr);
  return true;
}

void Cluster::release_wait(const std::string& client_id) {
  broker::Attachment link;
  {
    std::lock_guard lock(local_mutex_);
    auto it = waiting_.find(client_id);
    if (it == waiting_.end()) return;
    link = it->second.link;
    waiting_.erase(it);
  }
  broker_.connections().cluster_wait_over(link);
}

void Cluster::when_routes_known(const std::vector<std::string>& filters, broker::Attachment link) {
  auto gate = std::make_shared<broker::AckGate>();
  {
    std::lock_guard lock(local_mutex_);
    for (const std::string& filter : filters) {
      auto it = barriers_.find(filter);
      if (it == barriers_.end()) continue;
      gate->expect();
      it->second->gates.push_back(gate);
    }
  }
  gate->arm(
      [this, link](bool, const std::string&) { broker_.connections().cluster_wait_over(link); });
}

void Cluster::session_opened(const std::string& client_id, bool clean_start, uint32_t expiry,
                             broker::Attachment link) {
  if (producer_ == nullptr) return;
  {
    std::lock_guard lock(local_mutex_);
    auto it = claimed_.find(client_id);
    if (it != claimed_.end()) {
      const bool by_this_connection = it->second == link;
      claimed_.erase(it);
      if (by_this_connection) return;  // claimed before the session opened
    }
  }
  write_claim(client_id, clean_start, expiry, nullptr);
}

void Cluster::send_handover(const std::string& to_node, const std::string& client_id,
                            broker::Broker::Departure&& d, broker::PublishBatch* durable) {
  HandoverRecord r;
  r.client_id = client_id;
  r.from_node = node_id_;
  r.found = d.found;
  r.expiry_s = d.expiry;
  size_t bytes = 0;
  for (const auto& [filter, o] : d.subscriptions) {
    r.subscriptions.emplace_back(
        filter, store::encode(store::SubscriptionRecord{o.qos, o.no_local, o.retain_as_published,
                                                        o.retain_handling, o.subscription_id}));
    bytes += filter.size() + r.subscriptions.back().second.size() + 8;
  }
  r.inbound_qos2 = std::move(d.state.inbound_qos2);
  bytes += r.inbound_qos2.size() * 4;
  // One Kafka record as long as it fits, then more: the subscriptions and the inbound ids in
  // the first, the messages in order (in flight first) across them.
  size_t records = 0, messages = 0;
  auto send = [&](bool more) {
    r.more = more;
    messages += r.messages.size();
    ++records;
    broker::PublishOutcome unused;
    producer_->enqueue({topics_.inbox(to_node), client_id, encode(r), false},
                       kafka::Producer::Delivery::Kept, {}, durable, unused);
    r.subscriptions.clear();
    r.inbound_qos2.clear();
    r.messages.clear();
    bytes = 0;
  };
  for (const store::QueuedRecord& m : d.state.messages) {
    std::string encoded = store::encode(m);
    if (!r.messages.empty() && bytes + encoded.size() + 8 > handover_budget_) send(true);
    bytes += encoded.size() + 8;
    r.messages.push_back(std::move(encoded));
  }
  send(false);
  if (r.found) {
    spdlog::info(
        "cluster: session '{}' handed over to node '{}' ({} message(s), {} subscription(s), "
        "{} record(s))",
        client_id, to_node, messages, d.subscriptions.size(), records);
  }
}

void Cluster::expire_waits() {
  check_barriers();
  expire_departed();
  std::vector<broker::Attachment> go;
  {
    std::lock_guard lock(local_mutex_);
    if (waiting_.empty()) return;
    const int64_t now = steady_ms();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.deadline_ms <= now) {
        spdlog::warn(
            "cluster: client '{}' connects without waiting longer for Kafka (its claim) or for "
            "its session from its previous node (whose messages follow when that node answers)",
            it->first);
        go.push_back(it->second.link);
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const broker::Attachment& link : go)
    broker_.connections().cluster_wait_over(link);
}

broker::ClusterView Cluster::view() const {
  broker::ClusterView v;
  v.name = settings_.name;
  v.node_id = node_id_;
  v.ready = caught_up_.load();
  v.detail = status().detail;
  v.inbox_lag = reader_ ? reader_->inbox_lag() : -1;
  const int64_t now = steady_ms();
  size_t own_routes = 0;
  {
    std::lock_guard local(local_mutex_);  // never inside state_lock_ (see check_barriers)
    own_routes = local_counts_.size();
  }
  std::shared_lock lock(state_lock_);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const NodeState& n = nodes_[i];
    if (n.retired) continue;
    broker::ClusterNodeView nv;
    nv.id = n.id;
    nv.self = i == self_;
    nv.epoch = n.epoch;
    nv.http = n.http;
    nv.routes = n.filters.size();
    nv.forwards = n.forwards.load(std::memory_order_relaxed);
    nv.last_seen_ms = n.last_seen_ms < 0 ? -1 : now - n.last_seen_ms;
    if (nv.self) {
      nv.state = "up";
      nv.routes = own_routes;
    } else if (n.leaving) {
      nv.state = "left";
    } else if (n.last_seen_ms >= 0 && now - n.last_seen_ms <= settings_.node_timeout_ms) {
      nv.state = "up";
    } else {
      nv.state = "down";
    }
    v.nodes.push_back(std::move(nv));
  }
  return v;
}

broker::RoutePage Cluster::routes(const std::string& node_id, size_t offset, size_t limit) const {
  broker::RoutePage page;
  auto take = [&](const auto& filters) {
    page.known = true;
    page.total = filters.size();
    size_t i = 0;
    for (const auto& f : filters) {
      if (i++ < offset) continue;
      if (page.filters.size() >= limit) break;
      page.filters.emplace_back(f);
    }
  };
  if (node_id == node_id_) {
    std::lock_guard lock(local_mutex_);
    const std::set<std::string> filters = [this] {
      std::set<std::string> out;
      for (const auto& [filter, count] : local_counts_)
        out.insert(filter);
      return out;
    }();
    take(filters);
    return page;
  }
  std::shared_lock lock(state_lock_);
  auto it = numbers_.find(node_id);
  if (it != numbers_.end() && !nodes_[it->second].retired) take(nodes_[it->second].filters);
  return page;
}

broker::RetireOutcome Cluster::retire(const std::string& node_id) {
  using Result = broker::RetireOutcome::Result;
  broker::RetireOutcome out;
  if (node_id == node_id_) {
    out.result = Result::Self;
    return out;
  }
  std::vector<std::string> filters;
  {
    std::shared_lock lock(state_lock_);
    auto it = numbers_.find(node_id);
    if (it == numbers_.end() || nodes_[it->second].retired) return out;  // Unknown
    const NodeState& n = nodes_[it->second];
    if (up_locked(n)) {
      out.result = Result::Up;
      return out;
    }
    filters.assign(n.filters.begin(), n.filters.end());
  }
  // Every node (this one too) applies the tombstones as it reads them.
  broker::PublishOutcome unused;
  for (const std::string& filter : filters) {
    producer_->enqueue({topics_.routes, route_key(node_id, filter), {}, true},
                       kafka::Producer::Delivery::Unstored, {}, nullptr, unused);
  }
  producer_->enqueue({topics_.nodes, node_id, {}, true}, kafka::Producer::Delivery::Unstored, {},
                     nullptr, unused);
  {
    // Here at once: nothing is forwarded to it from the moment the answer says it is retired.
    std::unique_lock lock(state_lock_);
    const NodeNumber number = numbers_.at(node_id);
    NodeState& n = nodes_[number];
    for (const std::string& filter : filters)
      routes_.remove(number, filter);
    n.filters.clear();
    n.retired = true;
  }
  spdlog::warn("cluster: node '{}' retired by an operator ({} route(s) removed)", node_id,
               filters.size());
  out.result = Result::Retired;
  out.routes = filters.size();
  return out;
}

broker::BridgeStatus Cluster::status() const {
  broker::BridgeStatus s;
  s.ready = caught_up_.load();
  s.detail = s.ready ? "caught up with " + topics_.prefix + "*"
                     : "reading the shared state of " + topics_.prefix + "*";
  return s;
}

void Cluster::render_metrics(std::string& out) const {
  const broker::ClusterView v = view();
  metrics::Writer w(out);
  w.family("cluster_nodes", "gauge", "Nodes of the cluster by state, as this node sees them");
  for (const char* state : {"up", "down", "left"}) {
    const auto n = std::count_if(v.nodes.begin(), v.nodes.end(),
                                 [state](const auto& node) { return node.state == state; });
    w.sample("cluster_nodes", metrics::label("state", state), static_cast<uint64_t>(n));
  }
  w.family("cluster_forwards_total", "counter", "Messages forwarded to each other node");
  for (const auto& n : v.nodes) {
    if (!n.self) w.sample("cluster_forwards_total", metrics::label("node", n.id), n.forwards);
  }
  w.family("cluster_routes", "gauge", "Filters with subscribers, per node");
  for (const auto& n : v.nodes)
    w.sample("cluster_routes", metrics::label("node", n.id), n.routes);
  w.family("cluster_inbox_lag", "gauge", "Records of this node's inbox not read yet (-1: unknown)");
  w.sample("cluster_inbox_lag", "", v.inbox_lag);
  w.family("cluster_ready", "gauge", "1 once this node has read the shared state to its end");
  w.sample("cluster_ready", "", uint64_t{v.ready ? 1u : 0u});
}

// --- What the log reader found ---------------------------------------------------------------

void Cluster::on_heartbeat_removed(const std::string& node) {
  if (node == node_id_) return;
  std::unique_lock lock(state_lock_);
  auto it = numbers_.find(node);
  if (it == numbers_.end()) return;
  NodeState& n = nodes_[it->second];
  n.retired = true;
  n.last_seen_ms = -1;
  n.routes_read.clear();
  n.retained_read.clear();
  spdlog::info("cluster: node '{}' was retired", node);
}

void Cluster::on_heartbeat(const std::string& node, std::string_view value) {
  HeartbeatRecord hb;
  if (!decode(value, hb)) {
    spdlog::warn("cluster: unreadable heartbeat of node '{}', skipped", node);
    return;
  }
  if (node == node_id_) {
    if (hb.epoch != epoch_ && !hb.leaving && hb.epoch > epoch_) {
      spdlog::error(
          "cluster: another node runs with node_id '{}' (epoch {}): node ids must be "
          "unique",
          node, hb.epoch);
    }
    return;
  }
  std::unique_lock lock(state_lock_);
  NodeState& n = nodes_[number_of(node)];
  if (hb.epoch != n.epoch && n.epoch != 0) {
    spdlog::info("cluster: node '{}' restarted (epoch {})", node, hb.epoch);
  } else if (n.epoch == 0) {
    spdlog::info("cluster: node '{}' is a member (epoch {})", node, hb.epoch);
  }
  if (hb.leaving && !n.leaving) spdlog::info("cluster: node '{}' left", node);
  n.epoch = hb.epoch;
  n.http = hb.http;
  n.leaving = hb.leaving;
  n.retired = false;  // back after it was retired
  n.last_seen_ms = steady_ms();
  n.routes_read.clear();
  for (const auto& [partition, offset] : hb.routes_read)
    n.routes_read[partition] = offset;
  n.retained_read.clear();
  for (const auto& [partition, offset] : hb.retained_read)
    n.retained_read[partition] = offset;
  lock.unlock();
  check_barriers();
}

bool Cluster::on_route(std::string_view key, std::string_view value, bool tombstone,
                       int32_t partition, int64_t offset) {
  std::string_view node, filter;
  if (!parse_route_key(key, node, filter)) return false;
  if (node == node_id_) {
    // Our own, written by an earlier run or by this one: the local tree is the truth. At start
    // they tell what an earlier run left behind.
    if (!caught_up_) {
      std::lock_guard lock(local_mutex_);
      auto it = std::find(logged_own_routes_.begin(), logged_own_routes_.end(), filter);
      if (tombstone && it != logged_own_routes_.end()) logged_own_routes_.erase(it);
      if (!tombstone && it == logged_own_routes_.end()) logged_own_routes_.emplace_back(filter);
    }
    return false;
  }
  RouteRecord route;
  if (!tombstone && !decode(value, route)) {
    spdlog::warn("cluster: unreadable route '{}', skipped", key);
    return false;
  }
  {
    std::unique_lock lock(state_lock_);
    const NodeNumber number = number_of(std::string(node));
    NodeState& n = nodes_[number];
    routes_.remove(number, filter);
    if (auto it = n.filters.find(filter); it != n.filters.end()) n.filters.erase(it);
    if (!tombstone && routes_.add(number, filter, route.members)) n.filters.emplace(filter);
  }
  if (!tombstone && any_departed_.load(std::memory_order_relaxed)) {
    // The new node of a session that left here has its route: the ghost route here goes once
    // every node that is up has read it.
    std::lock_guard lock(local_mutex_);
    for (const auto& [client_id, d] : departed_) {
      if (d.to_node != node ||
          std::find(d.ghosts.begin(), d.ghosts.end(), filter) == d.ghosts.end()) {
        continue;
      }
      auto barrier = std::make_shared<RouteBarrier>();
      barrier->partition = partition;
      barrier->offset = offset;
      barrier->deadline_ms = steady_ms() + settings_.node_timeout_ms;
      auto gate = std::make_shared<broker::AckGate>();
      gate->expect();
      barrier->gates.push_back(gate);
      gate->arm([this, client_id = client_id, filter = std::string(filter)](
                    bool, const std::string&) { end_ghost(client_id, filter); });
      log_barriers_.push_back(std::move(barrier));
    }
  }
  return true;
}

void Cluster::on_claim(const std::string& client_id, std::string_view value, bool live) {
  ClaimRecord claim;
  if (!decode(value, claim)) {
    spdlog::warn("cluster: unreadable claim of client '{}', skipped", client_id);
    return;
  }
  Owner previous;
  std::string moved_from;  // our own claim: the node the client's session comes from
  {
    std::lock_guard lock(local_mutex_);
    Owner& owner = owners_[client_id];
    previous = owner;
    owner = Owner{claim.node, claim.expiry_s > 0 || !claim.clean_start};
    auto pending = pending_claims_.find(client_id);
    if (claim.node == node_id_) {
      if (pending != pending_claims_.end() && --pending->second == 0)
        pending_claims_.erase(pending);
      auto w = waiting_.find(client_id);
      if (w == waiting_.end() || w->second.claim_read || claim.epoch != epoch_) return;
      // Every earlier claim of the client has been read: previous says who held it.
      w->second.claim_read = true;
      if (!w->second.clean_start && previous.persistent && !previous.node.empty() &&
          previous.node != node_id_) {
        moved_from = previous.node;
        w->second.deadline_ms = steady_ms() + settings_.node_timeout_ms;
      }
    }
  }
  if (claim.node == node_id_) {
    if (moved_from.empty()) {
      release_wait(client_id);
      return;
    }
    // The session comes in the old owner's handover record (on_handover), unless that node is
    // down (the client starts afresh here; the session's messages follow when that node is
    // back, merged into the session here) or the session is here already.
    bool owner_up = false;
    {
      std::shared_lock lock(state_lock_);
      auto n = numbers_.find(moved_from);
      owner_up = n != numbers_.end() && up_locked(nodes_[n->second]);
    }
    if (!owner_up || broker_.has_session(client_id)) {
      release_wait(client_id);
    } else {
      spdlog::debug("cluster: client '{}' waits for its session from node '{}'", client_id,
                    moved_from);
    }
    return;
  }
  {
    std::lock_guard lock(local_mutex_);
    auto pending = pending_claims_.find(client_id);
    // A claim of ours comes later in the log: the client is here now.
    if (pending != pending_claims_.end()) return;
  }
  const auto now = broker::Clock::now();
  if (claim.clean_start || !broker_.has_session(client_id)) {
    // Nothing to move: a connection here is kicked, a delayed will cancelled, the session (if
    // any) ends. The node that waits for a session hears that there is none.
    broker_.client_taken_elsewhere(client_id, true, now);
    if (live && !claim.clean_start && previous.node == node_id_) {
      send_handover(claim.node, client_id, broker::Broker::Departure{}, nullptr);
    }
    return;
  }
  store::Store* store = broker_.store();
  std::optional<broker::PublishBatch> durable;
  if (store) durable.emplace(store);
  // The session leaves: from the moment it is out of the tree (under the tree's lock, in
  // subscription_removed), what comes here for it is passed on (relay()), and its routes here
  // stay until the other nodes know the new node's (ghosts).
  forget_departed(client_id);  // an earlier departure of it (it came back meanwhile)
  {
    std::lock_guard lock(local_mutex_);
    departed_[client_id] =
        Departed{claim.node, {}, {}, steady_ms() + kRelayWindowFactor * settings_.node_timeout_ms};
    any_departed_ = true;
  }
  t_departing = &client_id;
  broker::Broker::Departure departure =
      broker_.hand_over_session(client_id, now, durable ? &durable->batch() : nullptr);
  t_departing = nullptr;
  if (departure.found && departure.expiry == 0) {
    // It ended with its connection: a session without expiry does not outlive it.
    departure = broker::Broker::Departure{};
  }
  if (!departure.found) forget_departed(client_id);
  send_handover(claim.node, client_id, std::move(departure), durable ? &*durable : nullptr);
  std::vector<Departed::Held> held;
  {
    std::lock_guard lock(local_mutex_);
    if (auto it = departed_.find(client_id); it != departed_.end()) {
      it->second.handed = true;
      held = std::move(it->second.held);
    }
  }
  send_relayed(held, durable ? &*durable : nullptr);
  if (durable) durable->commit();
}

void Cluster::on_handover(std::string_view value, store::Batch* store_batch) {
  HandoverRecord r;
  if (!decode(value, r)) {
    spdlog::error("cluster: unreadable session handover in the inbox, skipped");
    return;
  }
  std::vector<std::string>& filters = arriving_filters_[r.client_id];
  if (r.found) {
    std::vector<std::pair<std::string, broker::SubscriptionOptions>> subscriptions;
    for (const auto& [filter, bytes] : r.subscriptions) {
      store::SubscriptionRecord o;
      if (!store::decode(bytes, o)) continue;
      subscriptions.emplace_back(
          filter, broker::SubscriptionOptions{o.qos, o.no_local, o.retain_as_published,
                                              o.retain_handling, o.subscription_id});
      filters.push_back(filter);
    }
    broker::Session::Exported state;
    for (const std::string& bytes : r.messages) {
      store::QueuedRecord m;
      if (store::decode(bytes, m)) state.messages.push_back(std::move(m));
    }
    state.inbound_qos2 = std::move(r.inbound_qos2);
    broker_.adopt_session(r.client_id, r.expiry_s, std::move(subscriptions), std::move(state),
                          broker::Clock::now(), store_batch);
    forget_departed(r.client_id);  // back here after it left: nothing to pass on any more
    spdlog::info("cluster: session '{}' arrived from node '{}'", r.client_id, r.from_node);
  }
  if (r.more) return;  // the rest of the session follows in the next records
  const std::vector<std::string> arrived = std::move(filters);
  arriving_filters_.erase(r.client_id);
  broker::Attachment link;
  {
    std::lock_guard lock(local_mutex_);
    auto it = waiting_.find(r.client_id);
    if (it == waiting_.end()) return;
    link = it->second.link;
    waiting_.erase(it);
  }
  // The CONNACK waits until every node that is up knows the session's routes here: a publish
  // elsewhere right after it reaches the client.
  when_routes_known(arrived, link);
}

bool Cluster::on_retained(std::string_view topic, std::string_view value) {
  MessageRecord record;
  if (!decode(value, record) || record.topic != topic) {
    spdlog::warn("cluster: unreadable retained message of '{}', skipped", topic);
    return false;
  }
  const bool foreign = record.origin_node != node_id_;
  const std::string retained_topic = record.topic;
  broker::MessagePtr msg = to_message(std::move(record), broker::Clock::now());
  if (!msg) {
    // Expired on its way: it still replaces what came before it in the log.
    auto cleared = std::make_shared<broker::Message>();
    cleared->topic = retained_topic;
    cleared->retain = true;
    msg = std::move(cleared);
  }
  broker_.apply_retained(msg, broker::Clock::now());
  return foreign;
}

void Cluster::relay(const MessageRecord& record, broker::PublishBatch* durable) {
  if (!any_departed_.load(std::memory_order_relaxed) || !record.plain) return;
  std::vector<Departed::Held> now_out;
  {
    std::lock_guard lock(local_mutex_);
    const int64_t now = steady_ms();
    for (auto it = departed_.begin(); it != departed_.end(); ++it) {
      Departed& d = it->second;
      if (d.until_ms <= now) continue;  // expire_departed() ends it
      // Not when the sender forwarded it to the session's new node too (that node routes it).
      const bool for_it = record.client.empty() || record.client == it->first;
      const bool sent_there =
          std::find(record.also.begin(), record.also.end(), d.to_node) != record.also.end();
      if (!for_it || sent_there ||
          std::none_of(d.filters.begin(), d.filters.end(), [&record](const std::string& f) {
            return mqtt::topic_matches(f, record.topic);
          })) {
        continue;
      }
      MessageRecord copy = record;
      copy.also.clear();
      copy.client = it->first;
      Departed::Held out{
          d.to_node, it->first, encode(copy),
          record.qos == 0 ? kafka::Producer::Delivery::Volatile : kafka::Producer::Delivery::Kept};
      // Published here while the handover is being made: it goes right after the handover.
      if (d.handed) {
        now_out.push_back(std::move(out));
      } else {
        d.held.push_back(std::move(out));
      }
    }
  }
  send_relayed(now_out, durable);
}

void Cluster::send_relayed(std::vector<Departed::Held>& records, broker::PublishBatch* durable) {
  for (Departed::Held& r : records) {
    // Keyed by the client, like its handover: it arrives after the session.
    broker::PublishOutcome unused;
    producer_->enqueue({topics_.inbox(r.node), r.client, std::move(r.value), false}, r.delivery, {},
                       durable, unused);
    spdlog::debug("cluster: a message passed on to client '{}' on node '{}'", r.client, r.node);
  }
}

void Cluster::forget_departed(const std::string& client_id) {
  std::vector<std::string> ghosts;
  {
    std::lock_guard lock(local_mutex_);
    auto it = departed_.find(client_id);
    if (it == departed_.end()) return;
    ghosts = std::move(it->second.ghosts);
    departed_.erase(it);
  }
  for (const std::string& filter : ghosts)
    subscription_removed(filter);
}

void Cluster::end_ghost(const std::string& client_id, const std::string& filter) {
  {
    std::lock_guard lock(local_mutex_);
    auto it = departed_.find(client_id);
    if (it == departed_.end()) return;
    auto& ghosts = it->second.ghosts;
    auto g = std::find(ghosts.begin(), ghosts.end(), filter);
    if (g == ghosts.end()) return;
    ghosts.erase(g);
  }
  subscription_removed(filter);
}

void Cluster::expire_departed() {
  if (!any_departed_.load(std::memory_order_relaxed)) return;
  std::vector<std::string> ghosts;
  {
    std::lock_guard lock(local_mutex_);
    const int64_t now = steady_ms();
    for (auto it = departed_.begin(); it != departed_.end();) {
      if (it->second.until_ms > now) {
        ++it;
        continue;
      }
      for (std::string& filter : it->second.ghosts)
        ghosts.push_back(std::move(filter));
      it = departed_.erase(it);
    }
    if (departed_.empty()) any_departed_ = false;
  }
  for (const std::string& filter : ghosts)
    subscription_removed(filter);
}

void Cluster::on_caught_up() {
  {
    std::lock_guard lock(local_mutex_);
    size_t stale = 0;
    for (const std::string& filter : logged_own_routes_) {
      if (local_counts_.contains(filter)) continue;
      write_route(filter, 0);
      ++stale;
    }
    logged_own_routes_.clear();
    if (stale > 0) spdlog::info("cluster: removed {} route(s) left by an earlier run", stale);
  }
  caught_up_ = true;
  spdlog::info("cluster: caught up with the shared state ({} node(s) known)", [this] {
    std::shared_lock lock(state_lock_);
    return nodes_.size();
  }());
}

}  // namespace starling::cluster
