#include "cluster/log_reader.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

#include "cluster/cluster.h"
#include "cluster/message_records.h"
#include "core/rate_limit.h"
#include "metrics/histogram.h"
#include "store/records.h"

namespace starling::cluster {

namespace {

using kafka::ListPtr;
using Clock = std::chrono::steady_clock;
constexpr size_t kBatch = 1000;

core::RateLimit g_unreachable_log{std::chrono::seconds(10)};

std::string_view view_of(const void* data, size_t size) {
  return data ? std::string_view(static_cast<const char*>(data), size) : std::string_view();
}

}  // namespace

void LogReader::create_topics() {
  rd_kafka_t* rk = rk_.get();
  const Topics& topics = cluster_.topics();
  const std::string& inbox = inbox_;
  const uint32_t inbox_partitions = inbox_partitions_;
  const std::string record_limit =
      std::to_string(cluster_record_limit(*cluster_.broker().settings()));
  struct Wanted {
    const std::string* name;
    int partitions;
    bool compact;
  };
  const Wanted wanted[] = {{&topics.nodes, 1, true},
                           {&topics.routes, 1, true},
                           {&topics.sessions, 4, true},
                           {&topics.retained, 4, true},
                           {&inbox, static_cast<int>(inbox_partitions), false}};
  std::vector<rd_kafka_NewTopic_t*> requests;
  char error[256];
  for (const Wanted& w : wanted) {
    rd_kafka_NewTopic_t* t =
        rd_kafka_NewTopic_new(w.name->c_str(), w.partitions, -1, error, sizeof error);
    if (t == nullptr) continue;
    if (w.compact) rd_kafka_NewTopic_set_config(t, "cleanup.policy", "compact");
    // Forwards and retained messages as large as the largest packet a client may send.
    rd_kafka_NewTopic_set_config(t, "max.message.bytes", record_limit.c_str());
    requests.push_back(t);
  }
  rd_kafka_queue_t* results = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(options, 2000, error, sizeof error);
  rd_kafka_CreateTopics(rk, requests.data(), requests.size(), options, results);
  if (rd_kafka_event_t* ev = rd_kafka_queue_poll(results, 3000)) {
    if (const rd_kafka_CreateTopics_result_t* r = rd_kafka_event_CreateTopics_result(ev)) {
      size_t n = 0;
      const rd_kafka_topic_result_t** each = rd_kafka_CreateTopics_result_topics(r, &n);
      for (size_t i = 0; i < n; ++i) {
        const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(each[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          spdlog::info("cluster: created topic {}", rd_kafka_topic_result_name(each[i]));
        }
      }
    }
    rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy_array(requests.data(), requests.size());
  rd_kafka_queue_destroy(results);
}

namespace {

// The partition count of a topic; 0 when Kafka does not know it (yet).
int partitions_of(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  int n = 0;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      n = md->topics[0].partition_cnt;
    }
  }
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return n;
}

}  // namespace

LogReader::LogReader(Cluster& cluster, const config::KafkaSettings& kafka,
                     const std::string& bootstrap, uint32_t inbox_partitions)
    : cluster_(cluster),
      inbox_partitions_(inbox_partitions),
      inbox_(cluster.topics().inbox(cluster.node_id())) {
  config::KafkaConsumeRule rule;
  rule.group = cluster.topics().prefix + cluster.node_id();
  rule.offset_reset = "earliest";
  kafka::ConfPtr conf = kafka::consumer_conf(kafka, bootstrap, rule);
  // End-of-partition events tell when the shared state has been read to its end.
  kafka::set(conf.get(), "enable.partition.eof", "true");
  // Forwards are latency: do not wait for a fuller fetch (unless the user says otherwise).
  if (!kafka::user_sets_consumer_property(kafka, "fetch.wait.max.ms")) {
    kafka::set(conf.get(), "fetch.wait.max.ms", "10");
  }
  kafka::set(conf.get(), "client.id", "starling-cluster-" + cluster.node_id());
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof error);
  if (rk == nullptr) throw std::runtime_error(std::string("cluster consumer: ") + error);
  conf.release();
  rk_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  queue_ = rd_kafka_queue_get_consumer(rk);
}

LogReader::~LogReader() {
  stop();
}

void LogReader::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "starling-clustr");
    run();
  });
}

void LogReader::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (!rk_) return;
  if (queue_) {
    rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
  }
  rd_kafka_consumer_close(rk_.get());
  rk_.reset();
}

bool LogReader::assign() {
  rd_kafka_t* rk = rk_.get();
  const Topics& t = cluster_.topics();
  ListPtr list(rd_kafka_topic_partition_list_new(16));
  state_end_.clear();
  state_next_.clear();
  for (const std::string* topic : {&t.nodes, &t.routes, &t.sessions, &t.retained}) {
    const int n = partitions_of(rk, *topic);
    if (n == 0) return false;
    for (int p = 0; p < n; ++p) {
      int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(rk, topic->c_str(), p, &low, &high, 5000) !=
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        return false;
      }
      state_end_[{*topic, p}] = high;
      state_next_[{*topic, p}] = low;
      rd_kafka_topic_partition_list_add(list.get(), topic->c_str(), p)->offset =
          RD_KAFKA_OFFSET_BEGINNING;
    }
  }
  const int inbox_n = partitions_of(rk, inbox_);
  if (inbox_n == 0) return false;
  // Where the inbox was read to: with a store, the offsets stored with what they routed (so a
  // forward is routed exactly once across crashes); without one, the group's committed offsets.
  std::map<int32_t, int64_t> stored;
  if (store::Store* store = cluster_.broker().store()) {
    store->scan(
        std::string(1, static_cast<char>(store::Kind::ClusterInbox)),
        [&](std::string_view key, std::string_view value) {
          std::string topic;
          int32_t partition = 0;
          int64_t offset = 0;
          if (store::parse_cluster_inbox(key, value, topic, partition, offset) && topic == inbox_) {
            stored[partition] = offset;
          }
          return true;
        });
  }
  for (int p = 0; p < inbox_n; ++p) {
    int64_t offset = RD_KAFKA_OFFSET_STORED;
    if (cluster_.broker().store()) {
      auto it = stored.find(p);
      offset = it == stored.end() ? RD_KAFKA_OFFSET_BEGINNING : it->second;
    }
    rd_kafka_topic_partition_list_add(list.get(), inbox_.c_str(), p)->offset = offset;
  }
  const rd_kafka_resp_err_t err = rd_kafka_assign(rk, list.get());
  if (err) {
    spdlog::warn("cluster: cannot assign the cluster's partitions: {}", rd_kafka_err2str(err));
    return false;
  }
  spdlog::info("cluster: reading {} state partition(s) and {} inbox partition(s)",
               state_end_.size(), inbox_n);
  return true;
}

bool LogReader::state_caught_up() const {
  for (const auto& [where, end] : state_end_) {
    auto it = state_next_.find(where);
    if (it == state_next_.end() || it->second < end) return false;
  }
  return true;
}

void LogReader::run() {
  std::vector<rd_kafka_message_t*> messages(kBatch);
  const auto heartbeat_every = std::chrono::milliseconds(cluster_.heartbeat_ms());
  auto next_heartbeat = Clock::now() + heartbeat_every;
  auto next_lag = Clock::now();
  while (!stop_) {
    if (Clock::now() >= next_heartbeat) {
      cluster_.heartbeat();
      next_heartbeat = Clock::now() + heartbeat_every;
    }
    if (!assigned_) {
      assigned_ = assign();
      if (!assigned_) {
        if (g_unreachable_log.allow()) {
          spdlog::warn("cluster: Kafka not reachable yet; the node is not ready");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        continue;
      }
    }
    const ssize_t n = kafka::consume_available(queue_, 50, messages);
    if (n > 0) read_batch(messages.data(), n);
    if (!caught_up_ && state_caught_up()) {
      caught_up_ = true;
      // Only the last claim of each client counts; then it is applied like a live one.
      for (const auto& [client, value] : early_claims_)
        cluster_.on_claim(client, value, false);
      early_claims_.clear();
      cluster_.on_caught_up();
    }
    cluster_.expire_waits();
    if (Clock::now() >= next_lag) {
      update_lag();
      next_lag = Clock::now() + std::chrono::seconds(1);
    }
  }
}

void LogReader::read_batch(rd_kafka_message_t** messages, ssize_t count) {
  const Topics& t = cluster_.topics();
  broker::Broker& broker = cluster_.broker();
  store::Store* const store = broker.store();
  broker::Ingress::Batch durable(broker.ingress());
  const auto settings = broker.settings();
  std::map<int32_t, int64_t> inbox_next;
  bool foreign_state = false;  // routes or retained messages of another node
  const auto now = broker::Clock::now();
  for (ssize_t i = 0; i < count; ++i) {
    rd_kafka_message_t* m = messages[i];
    const std::string topic = rd_kafka_topic_name(m->rkt);
    if (m->err) {
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        auto it = state_next_.find({topic, m->partition});
        if (it != state_next_.end()) it->second = std::max(it->second, m->offset);
      } else if (g_unreachable_log.allow()) {
        spdlog::warn("cluster: {}", rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    const std::string key(view_of(m->key, m->key_len));
    const std::string_view value = view_of(m->payload, m->len);
    const bool tombstone = m->payload == nullptr;
    if (topic == inbox_) {
      inbox_next[m->partition] = m->offset + 1;
      MessageRecord record;
      if (inbox_kind(value) == InboxKind::Handover) {
        cluster_.on_handover(value, store ? durable.store_batch() : nullptr);
      } else if (!decode(value, record)) {
        spdlog::warn("cluster: unreadable forward at {}[{}]@{}, skipped", topic, m->partition,
                     m->offset);
      } else {
        metrics::observe(metrics::Histogram::ClusterForward,
                         std::chrono::microseconds(age_us(record)));
        cluster_.relay(record, store ? durable.publish_batch() : nullptr);
        const std::string origin = std::move(record.origin_client_id);
        broker::Publication pub;
        if (to_publication(std::move(record), pub)) {
          broker::Publisher from;
          from.settings = settings.get();
          from.client_id = origin;
          broker::PublishResult result = durable.publish(std::move(pub), from, now);
          if (result.gate) result.gate->arm(nullptr);
          if (broker::refused_by_rules(result.verdict)) {
            spdlog::warn("cluster: forward of '{}' refused here: {}", pub.topic,
                         broker::describe(result.verdict));
          }
        }
      }
    } else {
      auto it = state_next_.find({topic, m->partition});
      if (it != state_next_.end()) it->second = std::max(it->second, m->offset + 1);
      if (topic == t.nodes) {
        if (tombstone) {
          cluster_.on_heartbeat_removed(key);
        } else {
          cluster_.on_heartbeat(key, value);
        }
      } else if (topic == t.routes) {
        foreign_state |= cluster_.on_route(key, value, tombstone, m->partition, m->offset);
      } else if (topic == t.sessions) {
        if (tombstone) {
          early_claims_.erase(key);
        } else if (!caught_up_) {
          early_claims_[key] = std::string(value);
        } else {
          cluster_.on_claim(key, value, true);
        }
      } else if (topic == t.retained) {
        if (!tombstone) foreign_state |= cluster_.on_retained(key, value);
      }
    }
    rd_kafka_message_destroy(m);
  }
  {
    std::lock_guard lock(positions_mutex_);
    routes_read_.clear();
    retained_read_.clear();
    for (const auto& [where, next] : state_next_) {
      if (where.first == t.routes) routes_read_.emplace_back(where.second, next);
      if (where.first == t.retained) retained_read_.emplace_back(where.second, next);
    }
  }
  // Nodes whose SUBACKs (or retained publishes) wait for this node to have read their records
  // hear it at once.
  if (foreign_state && caught_up_) cluster_.heartbeat();
  if (inbox_next.empty()) return;
  if (store) {
    // The offsets go with what they routed, in one store write.
    store::Batch* batch = durable.store_batch();
    for (const auto& [partition, offset] : inbox_next)
      batch->put(store::cluster_inbox_key(inbox_, partition), store::cluster_inbox_value(offset));
    durable.commit();
    return;
  }
  ListPtr offsets(rd_kafka_topic_partition_list_new(static_cast<int>(inbox_next.size())));
  for (const auto& [partition, offset] : inbox_next)
    rd_kafka_topic_partition_list_add(offsets.get(), inbox_.c_str(), partition)->offset = offset;
  rd_kafka_offsets_store(rk_.get(), offsets.get());
}

void LogReader::positions(Positions& routes, Positions& retained) const {
  std::lock_guard lock(positions_mutex_);
  routes = routes_read_;
  retained = retained_read_;
}

void LogReader::update_lag() {
  if (!assigned_) return;
  int assigned = 0;
  const int64_t lag = kafka::assignment_lag(rk_.get(), inbox_.c_str(), assigned);
  if (assigned >= 0) inbox_lag_ = lag;
}

}  // namespace starling::cluster
