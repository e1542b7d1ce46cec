#include "kafka/consumer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kafka/schema_registry.h"
#include "metrics/counters.h"

namespace starling::kafka {

namespace {

constexpr size_t kBatch = 1000;

}  // namespace

Consumer::Consumer(size_t index, const config::KafkaConsumeRule& rule,
                   const config::KafkaSettings& settings, const std::string& bootstrap,
                   broker::Broker& broker, AvroConfluentDecoder* decoder,
                   const std::string& instance)
    : index_(index),
      rule_(rule),
      broker_(broker),
      decoder_(decoder),
      topic_template_(Template::parse(rule.mqtt_topic, Template::Direction::ToMqtt)) {
  ConfPtr conf = consumer_conf(settings, bootstrap, rule);
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_rebalance_cb(conf.get(), &Consumer::on_rebalance);
  if (!instance.empty() && !user_sets_consumer_property(settings, "group.instance.id")) {
    set(conf.get(), "group.instance.id", instance + "-" + std::to_string(index));
  }
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof error);
  if (rk == nullptr) throw std::runtime_error(std::string("Kafka consumer: ") + error);
  conf.release();
  rk_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  ListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(rule.topics.size())));
  for (const std::string& t : rule.topics)
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics.get());
  if (err) throw std::runtime_error(std::string("Kafka subscribe: ") + rd_kafka_err2str(err));
  queue_ = rd_kafka_queue_get_consumer(rk);
}

Consumer::~Consumer() {
  stop_reading();
  close();
}

void Consumer::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), ("starling-kc" + std::to_string(index_)).c_str());
    run();
  });
}

void Consumer::stop_reading() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Consumer::close() {
  if (!rk_) return;
  if (queue_) {
    rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
  }
  rd_kafka_consumer_close(rk_.get());  // commits the stored offsets, leaves the group
  rk_.reset();
}

void Consumer::run() {
  std::vector<rd_kafka_message_t*> messages(kBatch);
  auto next_lag = std::chrono::steady_clock::now();
  while (!stop_) {
    const ssize_t n = consume_available(queue_, 100, messages);
    if (n > 0) route_batch(messages.data(), n);
    if (std::chrono::steady_clock::now() >= next_lag) {
      update_lag();
      next_lag = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    }
  }
}

void Consumer::route_batch(rd_kafka_message_t** messages, ssize_t count) {
  store::Store* const store = broker_.store();
  // One store commit for the batch: its offsets are stored once everything it routed is durable.
  broker::Ingress::Batch durable(broker_.ingress());
  const auto settings = broker_.settings();
  broker::Publisher from;
  from.settings = settings.get();
  from.from_bridge = true;
  from.durable_at_qos0 = true;
  // The next offset to read per partition, stored once the batch is durable.
  std::map<std::pair<std::string, int32_t>, int64_t> next_offsets;
  bool congested = false;
  const auto now = broker::Clock::now();  // not a loop thread: no cached loop time
  std::string json;
  std::string error;
  for (ssize_t i = 0; i < count; ++i) {
    rd_kafka_message_t* m = messages[i];
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        spdlog::warn("kafka consume[{}]: {}", index_, rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    const char* topic_name = rd_kafka_topic_name(m->rkt);
    next_offsets[{topic_name, m->partition}] = m->offset + 1;

    std::vector<std::pair<std::string, std::string>> headers;
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t idx = 0; !rd_kafka_header_get_all(hdrs, idx, &name, &value, &size); ++idx) {
        headers.emplace_back(
            name, value ? std::string(static_cast<const char*>(value), size) : std::string());
      }
    }
    TemplateValues values;
    values.kafka_topic = topic_name;
    values.key = m->key ? std::string_view(static_cast<const char*>(m->key), m->key_len)
                        : std::string_view();
    values.partition = m->partition;
    values.headers = &headers;
    broker::Publication pub;
    pub.topic =
        topic_template_.constant() ? topic_template_.literal() : topic_template_.expand(values);
    std::string_view payload(static_cast<const char*>(m->payload), m->payload ? m->len : 0);
    if (decoder_) {
      if (!decoder_->decode(payload, json, error)) {
        metrics::add(metrics::Counter::KafkaConsumeSkipped);
        spdlog::warn("kafka consume[{}]: {}[{}]@{}: not decoded ({}); skipped", index_, topic_name,
                     m->partition, m->offset, error);
        rd_kafka_message_destroy(m);
        continue;
      }
      pub.payload = std::move(json);
      json.clear();
    } else {
      pub.payload.assign(payload);
    }
    pub.qos = rule_.qos;
    pub.retain = rule_.retain;
    if ((rule_.user_properties && !headers.empty()) || decoder_) {
      auto props = std::make_unique<broker::MessageProperties>();
      if (rule_.user_properties) props->user_properties = std::move(headers);
      if (decoder_) {
        props->content_type = "application/json";
        props->payload_format_indicator = 1;
      }
      pub.properties = std::move(props);
    }
    broker::PublishResult result = durable.publish(std::move(pub), from, now);
    if (result.gate) result.gate->arm(nullptr);  // nothing waits for the bridge here
    congested |= result.congested;
    if (broker::refused_by_rules(result.verdict)) {
      // The rule made a message the broker does not take (the record itself is fine).
      metrics::add(metrics::Counter::KafkaConsumeSkipped);
      spdlog::warn("kafka consume[{}]: {}[{}]@{}: '{}' refused: {}; skipped", index_, topic_name,
                   m->partition, m->offset, pub.topic, broker::describe(result.verdict));
    } else {
      metrics::add(metrics::Counter::KafkaConsumed);
    }
    rd_kafka_message_destroy(m);
  }
  if (next_offsets.empty()) return;

  ListPtr offsets(rd_kafka_topic_partition_list_new(static_cast<int>(next_offsets.size())));
  for (const auto& [where, offset] : next_offsets) {
    rd_kafka_topic_partition_list_add(offsets.get(), where.first.c_str(), where.second)->offset =
        offset;
  }
  const uint64_t ticket = durable.commit();
  rd_kafka_t* rk = rk_.get();
  if (ticket == 0 || store->durable() >= ticket) {
    rd_kafka_offsets_store(rk, offsets.get());
  } else {
    // The store runs this in ticket order, so a partition's offsets only move forward.
    store->when_durable(ticket, [rk, list = offsets.release()] {
      rd_kafka_offsets_store(rk, list);
      rd_kafka_topic_partition_list_destroy(list);
    });
  }
  // Subscribers' queues are filling: give them time rather than drop.
  if (congested) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Consumer::on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* self = static_cast<Consumer*>(opaque);
  spdlog::info("kafka consume[{}]: {} {} partition(s)", self->index_,
               err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned" : "giving up",
               partitions ? partitions->cnt : 0);
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  rd_kafka_error_t* error = nullptr;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (cooperative) {
      error = rd_kafka_incremental_assign(rk, partitions);
    } else {
      rd_kafka_assign(rk, partitions);
    }
  } else {
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) self->hand_over(rk);
    if (cooperative) {
      error = rd_kafka_incremental_unassign(rk, partitions);
    } else {
      rd_kafka_assign(rk, nullptr);
    }
  }
  if (error != nullptr) {
    spdlog::warn("kafka consume[{}]: rebalance: {}", self->index_, rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  }
}

void Consumer::hand_over(rd_kafka_t* rk) {
  // The offsets of routed batches are stored when the store has them on disk: wait for that,
  // so the next owner starts right after the last record routed here, not at the last
  // periodic commit (which would deliver the records in between twice).
  if (store::Store* store = broker_.store()) store->flush();
  // Synchronously, the stored offsets of the whole assignment (the revoked partitions are
  // still in it).
  const rd_kafka_resp_err_t err = rd_kafka_commit(rk, nullptr, 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
    spdlog::warn("kafka consume[{}]: committing before a rebalance: {}", index_,
                 rd_kafka_err2str(err));
  }
}

void Consumer::update_lag() {
  int assigned = 0;
  const int64_t lag = assignment_lag(rk_.get(), nullptr, assigned);
  if (assigned < 0) return;  // the assignment could not be read: keep the last figures
  assigned_ = assigned;
  lag_ = lag;
}

}  // namespace starling::kafka
