#include "kafka/producer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

#include "core/rate_limit.h"
#include "metrics/counters.h"
#include "metrics/histogram.h"
#include "mqtt/topic.h"
#include "store/records.h"

namespace starling::kafka {

namespace {

using Clock = std::chrono::steady_clock;

enum HeaderBits : uint8_t {
  kTopic = 1,
  kClientId = 2,
  kUsername = 4,
  kQos = 8,
  kRetain = 16,
  kContentType = 32,
  kUserProperties = 64,
};

uint8_t header_bits(const std::vector<std::string>& names) {
  uint8_t bits = 0;
  for (const std::string& n : names) {
    if (n == "topic") bits |= kTopic;
    if (n == "clientid") bits |= kClientId;
    if (n == "username") bits |= kUsername;
    if (n == "qos") bits |= kQos;
    if (n == "retain") bits |= kRetain;
    if (n == "content_type") bits |= kContentType;
    if (n == "user_properties") bits |= kUserProperties;
  }
  return bits;
}

// Errors that another attempt cannot fix: the record is dropped, counted and logged.
bool permanent(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
      return true;
    default:
      return false;
  }
}

// 250 ms, doubling to 10 s: an outage is retried without a storm of requests.
std::chrono::milliseconds backoff(uint32_t attempts) {
  int64_t ms = 250;
  for (uint32_t i = 1; i < attempts && ms < 10000; ++i)
    ms *= 2;
  return std::chrono::milliseconds(std::min<int64_t>(ms, 10000));
}

// A Kafka outage fails many records: one log line per interval per kind.
core::RateLimit g_retry_log{std::chrono::seconds(5)};
core::RateLimit g_failure_log{std::chrono::seconds(5)};

}  // namespace

Producer::Producer(const config::KafkaSettings& settings, const std::string& bootstrap,
                   store::Store* store, broker::ConnectionControl& connections)
    : settings_(settings), store_(store), connections_(connections) {
  for (const config::KafkaProduceRule& r : settings.produce) {
    Rule rule;
    rule.config = r;
    rule.topic = Template::parse(r.topic, Template::Direction::ToKafka);
    rule.key = Template::parse(r.key, Template::Direction::ToKafka);
    rule.has_key = !r.key.empty();
    rule.sync = r.mode == "sync";
    rule.headers = header_bits(r.headers);
    rule.partitioner = r.partitioner == "key-hash" ? "murmur2_random" : r.partitioner;
    rules_.push_back(std::move(rule));
  }
  ConfPtr conf = producer_conf(settings, bootstrap);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &Producer::delivery_callback);
  rd_kafka_conf_set_opaque(conf.get(), this);
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error);
  if (rk == nullptr) throw std::runtime_error(std::string("Kafka producer: ") + error);
  conf.release();  // rd_kafka_new owns it now
  rk_.reset(rk);
}

Producer::~Producer() {
  stop(std::chrono::milliseconds(0));
  std::lock_guard lock(mutex_);
  for (auto& [name, rkt] : topic_handles_)
    rd_kafka_topic_destroy(rkt);
  topic_handles_.clear();
}

void Producer::start() {
  if (store_) {
    // The buffer of the previous run, in acceptance order.
    uint64_t restored = 0;
    uint64_t max_seq = 0;
    std::vector<std::unique_ptr<Record>> records;
    store_->scan(std::string(1, static_cast<char>(store::Kind::KafkaOutbox)),
                 [&](std::string_view key, std::string_view value) {
                   uint64_t seq = 0;
                   store::KafkaOutboxRecord r;
                   if (!store::parse_kafka_outbox_key(key, seq) || !store::decode(value, r)) {
                     spdlog::error("kafka: unreadable buffered record in the store, skipped");
                     return true;
                   }
                   auto rec = std::make_unique<Record>();
                   rec->seq = seq;
                   rec->rule = r.rule < rules_.size() || r.rule == kOwnRule ? r.rule : 0;
                   rec->topic = std::move(r.topic);
                   rec->key = std::move(r.key);
                   rec->stored_value = std::move(r.value);
                   rec->value = rec->stored_value;
                   rec->headers = std::move(r.headers);
                   rec->bytes =
                       rec->topic.size() + rec->value.size() + (rec->key ? rec->key->size() : 0);
                   max_seq = std::max(max_seq, seq);
                   records.push_back(std::move(rec));
                   ++restored;
                   return true;
                 });
    next_seq_ = max_seq + 1;
    for (auto& rec : records) {
      rec->buffered = true;
      buffered_messages_.fetch_add(1, std::memory_order_relaxed);
      buffered_bytes_.fetch_add(rec->bytes, std::memory_order_relaxed);
      produce(std::move(rec));
    }
    if (restored > 0) {
      spdlog::info("kafka: producing {} buffered records left from the previous run", restored);
    }
  }
  check_reachable();
  poller_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "starling-kprod");
    poll_loop();
  });
  // A metadata request blocks up to a second when Kafka is away: on a thread of its own, so
  // that delivery reports and retries never wait for it.
  checker_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "starling-kcheck");
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::seconds(5), [this] { return stopping_; })) {
      lock.unlock();
      check_reachable();
      lock.lock();
    }
  });
}

void Producer::stop(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !poller_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (poller_.joinable()) poller_.join();
  if (checker_.joinable()) checker_.join();
  if (!rk_) return;
  // Let what is in flight be acknowledged (its K records are then deleted); what is not stays
  // in the store for the next start.
  rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
  if (store_) write_deletes();
  dropping_ = true;
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(rk_.get(), 0);  // serves the purged records' reports: frees them
  std::deque<std::unique_ptr<Record>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(retries_);
  }
  for (auto& rec : left) {
    if (rec->gate) rec->gate->settle("the broker is shutting down");
  }
}

std::unique_ptr<Producer::Record> Producer::make_record(uint32_t rule_index, const Rule& rule,
                                                        const broker::Message& msg) const {
  auto rec = std::make_unique<Record>();
  rec->rule = rule_index;
  TemplateValues values;
  values.topic = msg.topic;
  values.client_id = msg.origin_client_id;
  values.username = msg.origin_username;
  rec->topic =
      rule.topic.constant() ? rule.topic.literal() : kafka_topic_name(rule.topic.expand(values));
  if (rule.has_key) {
    // An empty key (an HTTP publish has no client id) would put every such record in one
    // partition; without a key the partitioner spreads them.
    std::string key = rule.key.expand(values);
    if (!key.empty()) rec->key = std::move(key);
  }
  rec->value = msg.payload;  // msg stays alive in rec->message (set by the caller)
  auto& h = rec->headers;
  if (rule.headers & kTopic) h.emplace_back("mqtt.topic", msg.topic);
  if (rule.headers & kClientId && !msg.origin_client_id.empty()) {
    h.emplace_back("mqtt.client_id", msg.origin_client_id);
  }
  if (rule.headers & kUsername && !msg.origin_username.empty()) {
    h.emplace_back("mqtt.username", msg.origin_username);
  }
  if (rule.headers & kQos)
    h.emplace_back("mqtt.qos", std::string(1, static_cast<char>('0' + msg.qos)));
  if (rule.headers & kRetain) h.emplace_back("mqtt.retain", msg.retain ? "1" : "0");
  if (msg.properties) {
    if (rule.headers & kContentType && msg.properties->content_type) {
      h.emplace_back("content-type", *msg.properties->content_type);
    }
    if (rule.headers & kUserProperties) {
      for (const auto& kv : msg.properties->user_properties)
        h.push_back(kv);
    }
  }
  rec->bytes = rec->topic.size() + rec->value.size() + (rec->key ? rec->key->size() : 0);
  for (const auto& [name, value] : h)
    rec->bytes += name.size() + value.size();
  return rec;
}

void Producer::on_publish(const broker::MessagePtr& msg, broker::Attachment publisher,
                          broker::PublishBatch* durable, broker::PublishOutcome& outcome) {
  for (uint32_t i = 0; i < rules_.size(); ++i) {
    const Rule& rule = rules_[i];
    if (!mqtt::topic_matches(rule.config.filter, msg->topic)) continue;
    std::unique_ptr<Record> rec = make_record(i, rule, *msg);
    rec->message = msg;
    if (rule.sync) {
      produce_sync(std::move(rec), outcome);
    } else {
      buffer(std::move(rec), msg->topic, publisher, durable, outcome);
    }
  }
}

void Producer::enqueue(OwnRecord&& own, Delivery delivery, broker::Attachment publisher,
                       broker::PublishBatch* durable, broker::PublishOutcome& outcome) {
  auto rec = std::make_unique<Record>();
  rec->rule = kOwnRule;
  rec->topic = std::move(own.topic);
  rec->key = std::move(own.key);
  rec->stored_value = std::move(own.value);
  rec->value = rec->stored_value;
  rec->null_value = own.null_value;
  rec->delivered = std::move(own.delivered);
  rec->bytes = rec->topic.size() + rec->value.size() + (rec->key ? rec->key->size() : 0);
  switch (delivery) {
    case Delivery::Buffered:
    case Delivery::Volatile:
    case Delivery::Kept: {
      const std::string what = rec->topic;
      buffer(std::move(rec), what, publisher, durable, outcome, delivery != Delivery::Kept,
             delivery != Delivery::Volatile);
      break;
    }
    case Delivery::Sync:
      produce_sync(std::move(rec), outcome);
      break;
    case Delivery::Unstored:
      produce(std::move(rec));
      break;
  }
}

void Producer::produce_sync(std::unique_ptr<Record> rec, broker::PublishOutcome& outcome) {
  if (!outcome.gate) outcome.gate = std::make_shared<broker::AckGate>();
  outcome.gate->expect();
  rec->gate = outcome.gate;
  sync_waiting_.fetch_add(1, std::memory_order_relaxed);
  produce(std::move(rec));
}

void Producer::buffer(std::unique_ptr<Record> rec, std::string_view what,
                      broker::Attachment publisher, broker::PublishBatch* durable,
                      broker::PublishOutcome& outcome, bool may_refuse, bool stored) {
  const uint64_t messages = buffered_messages_.load(std::memory_order_relaxed);
  const uint64_t bytes = buffered_bytes_.load(std::memory_order_relaxed);
  if (may_refuse && (messages + 1 > settings_.buffer_max_messages ||
                     bytes + rec->bytes > settings_.buffer_max_bytes)) {
    metrics::add(metrics::Counter::KafkaRefused);
    outcome.refused = true;
    if (g_failure_log.allow()) {
      spdlog::warn("kafka: buffer full ({} records, {} bytes): refusing records of '{}'", messages,
                   bytes, what);
    }
    return;
  }
  rec->buffered = true;
  buffered_messages_.fetch_add(1, std::memory_order_relaxed);
  buffered_bytes_.fetch_add(rec->bytes, std::memory_order_relaxed);
  // From 80% on, publishers are paused until the buffer is down to half.
  if ((messages + 1) * 5 > settings_.buffer_max_messages * 4 ||
      (bytes + rec->bytes) * 5 > settings_.buffer_max_bytes * 4) {
    outcome.congested = true;
    if (publisher) {
      std::lock_guard lock(mutex_);
      if (std::find(paused_publishers_.begin(), paused_publishers_.end(), publisher) ==
          paused_publishers_.end()) {
        paused_publishers_.push_back(publisher);
        metrics::add(metrics::Counter::PublishersThrottled);
      }
    }
  }
  if (store_ && stored) {
    rec->seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    store::KafkaOutboxRecord stored{rec->rule, rec->topic, rec->key, std::string(rec->value),
                                    rec->headers};
    if (durable) {
      // Before producing: the delete after Kafka's ack gets a later ticket than this put.
      durable->batch().put(store::kafka_outbox_key(rec->seq), store::encode(stored));
    } else {
      store::Batch batch;
      batch.put(store::kafka_outbox_key(rec->seq), store::encode(stored));
      store_->write_background(std::move(batch));
    }
  }
  produce(std::move(rec));
}

rd_kafka_topic_t* Producer::topic_handle(const Rule& rule, const std::string& topic) {
  std::lock_guard lock(mutex_);
  auto it = topic_handles_.find(topic);
  if (it != topic_handles_.end()) return it->second;
  rd_kafka_topic_conf_t* tconf = rd_kafka_topic_conf_new();
  char error[256];
  if (rd_kafka_topic_conf_set(tconf, "partitioner", rule.partitioner.c_str(), error,
                              sizeof error) != RD_KAFKA_CONF_OK) {
    spdlog::error("kafka: partitioner {}: {}", rule.partitioner, error);
  }
  // The first rule to produce to a topic sets its partitioner (librdkafka keeps one handle).
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_.get(), topic.c_str(), tconf);
  topic_handles_.emplace(topic, rkt);
  return rkt;
}

void Producer::produce(std::unique_ptr<Record> record) {
  Record* rec = record.get();
  rd_kafka_headers_t* headers = nullptr;
  if (!rec->headers.empty()) {
    headers = rd_kafka_headers_new(rec->headers.size());
    for (const auto& [name, value] : rec->headers) {
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    }
  }
  rec->produced_at = Clock::now();
  ++rec->attempts;
  const Rule* rule = rec->rule < rules_.size() ? &rules_[rec->rule] : nullptr;
  const void* key = rec->key ? rec->key->data() : nullptr;
  const size_t key_size = rec->key ? rec->key->size() : 0;
  char* value = rec->null_value ? nullptr : const_cast<char*>(rec->value.data());
  const size_t value_size = rec->null_value ? 0 : rec->value.size();
  // No copy: librdkafka points into the record, which lives until its delivery report.
  rd_kafka_resp_err_t err;
  if (rule == nullptr || rule->partitioner.empty()) {
    err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_TOPIC(rec->topic.c_str()),
                            RD_KAFKA_V_VALUE(value, value_size), RD_KAFKA_V_KEY(key, key_size),
                            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_END);
  } else {
    err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(topic_handle(*rule, rec->topic)),
                            RD_KAFKA_V_VALUE(value, value_size), RD_KAFKA_V_KEY(key, key_size),
                            RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_END);
  }
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    record.release();  // owned by librdkafka until the delivery report
    return;
  }
  if (headers) rd_kafka_headers_destroy(headers);  // not taken on failure
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    schedule_retry(std::move(record), std::chrono::milliseconds(50));
    return;
  }
  // Refused at once (unknown topic with auto-creation off, bad argument): like a failed
  // delivery.
  rd_kafka_message_t fake{};
  fake.err = err;
  fake._private = rec;
  record.release();
  on_delivery(&fake);
}

void Producer::schedule_retry(std::unique_ptr<Record> record, std::chrono::milliseconds delay) {
  record->retry_at = Clock::now() + delay;
  {
    std::lock_guard lock(mutex_);
    retries_.push_back(std::move(record));
  }
  wake_.notify_all();
}

void Producer::delivery_callback(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  static_cast<Producer*>(opaque)->on_delivery(message);
}

void Producer::on_delivery(const rd_kafka_message_t* message) {
  std::unique_ptr<Record> rec(static_cast<Record*>(message->_private));
  if (rec == nullptr) return;
  if (dropping_) {
    // Shutting down: an async record stays in the store for the next start.
    if (rec->gate) {
      sync_waiting_.fetch_sub(1, std::memory_order_relaxed);
      rec->gate->settle("the broker is shutting down");
    }
    return;
  }
  metrics::observe(metrics::Histogram::KafkaProduce, Clock::now() - rec->produced_at);
  const rd_kafka_resp_err_t err = message->err;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (rec->rule != kOwnRule) metrics::add(metrics::Counter::KafkaProduced);
    if (rec->delivered) rec->delivered(message->partition, message->offset);
    if (rec->gate) {
      sync_waiting_.fetch_sub(1, std::memory_order_relaxed);
      rec->gate->settle();
    } else {
      finish_async(std::move(rec));
    }
    return;
  }
  if (rec->gate) {
    // sync: librdkafka retried until message.timeout.ms; the publisher is told.
    sync_waiting_.fetch_sub(1, std::memory_order_relaxed);
    metrics::add(metrics::Counter::KafkaSyncFailures);
    if (g_failure_log.allow()) {
      spdlog::warn("kafka: sync record to {} failed: {}", rec->topic, rd_kafka_err2str(err));
    }
    rec->gate->settle(rd_kafka_err2str(err));
    return;
  }
  if (permanent(err)) {
    metrics::add(metrics::Counter::KafkaProduceFailed);
    spdlog::error("kafka: record to {} dropped, Kafka refused it: {}", rec->topic,
                  rd_kafka_err2str(err));
    finish_async(std::move(rec));
    return;
  }
  metrics::add(metrics::Counter::KafkaProduceRetries);
  if (g_retry_log.allow()) {
    uint64_t more = g_retry_log.take_denied();
    spdlog::warn("kafka: delivery to {} failed ({}); retrying{}", rec->topic, rd_kafka_err2str(err),
                 more ? " (and " + std::to_string(more) + " more failures)" : "");
  }
  const auto delay = backoff(rec->attempts);
  schedule_retry(std::move(rec), delay);
}

void Producer::finish_async(std::unique_ptr<Record> rec) {
  if (store_ && rec->seq) {
    std::lock_guard lock(deletes_mutex_);
    deletes_.del(store::kafka_outbox_key(rec->seq));  // written by write_deletes
  }
  if (!rec->buffered) return;
  const uint64_t left = buffered_messages_.fetch_sub(1, std::memory_order_relaxed) - 1;
  const uint64_t bytes =
      buffered_bytes_.fetch_sub(rec->bytes, std::memory_order_relaxed) - rec->bytes;
  if (left * 2 <= settings_.buffer_max_messages && bytes * 2 <= settings_.buffer_max_bytes) {
    std::vector<broker::Attachment> resume;
    {
      std::lock_guard lock(mutex_);
      resume.swap(paused_publishers_);
    }
    for (const auto& link : resume)
      connections_.resume_reading(link);
  }
}

void Producer::write_deletes() {
  store::Batch batch;
  {
    std::lock_guard lock(deletes_mutex_);
    if (deletes_.empty()) return;
    std::swap(batch, deletes_);
  }
  store_->write_background(std::move(batch));
}

void Producer::poll_loop() {
  for (;;) {
    rd_kafka_poll(rk_.get(), 20);  // delivery reports
    if (store_) write_deletes();
    std::vector<std::unique_ptr<Record>> due;
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
      const auto now = Clock::now();
      for (auto it = retries_.begin(); it != retries_.end();) {
        if ((*it)->retry_at <= now) {
          due.push_back(std::move(*it));
          it = retries_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& rec : due)
      produce(std::move(rec));
  }
}

void Producer::check_reachable() {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 0, nullptr, &md, 1000);
  const bool up = err == RD_KAFKA_RESP_ERR_NO_ERROR && md && md->broker_cnt > 0;
  if (md) rd_kafka_metadata_destroy(md);
  const bool was = reachable_.exchange(up, std::memory_order_relaxed);
  if (was != up) {
    if (up) {
      spdlog::info("kafka: brokers reachable");
    } else {
      spdlog::warn("kafka: no broker reachable ({})", rd_kafka_err2str(err));
    }
  }
}

}  // namespace starling::kafka
