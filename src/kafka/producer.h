// MQTT (and HTTP) to Kafka: the [[kafka.produce]] rules on one librdkafka producer.
//
// async: a matching message becomes records in a bounded buffer that is also in the store
// (K records, in the publish's own batch, so the PUBACK waits for them); a record leaves the
// buffer when Kafka acknowledged it, and is produced again after any failed delivery, through
// outages and hangs alike. A restart produces what the store still holds.
// sync: the publish's acknowledgement waits for Kafka's (an AckGate per message); a failure
// is answered to the publisher, who still holds the message.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "config/config.h"
#include "config/kafka_template.h"
#include "kafka/client_config.h"
#include "store/store.h"

namespace starling::kafka {

class Producer {
 public:
  // Throws std::runtime_error when librdkafka refuses the configuration.
  // connections: where paused publishers are resumed once the buffer drains.
  Producer(const config::KafkaSettings& settings, const std::string& bootstrap, store::Store* store,
           broker::ConnectionControl& connections);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Produces what the store's buffer holds from before a restart, then serves deliveries.
  void start();
  // Waits up to timeout for Kafka to acknowledge what is in flight, then stops. What is left
  // stays in the store for the next start; sync publishes still waiting are failed.
  void stop(std::chrono::milliseconds timeout);

  bool has_rules() const { return !rules_.empty(); }
  void on_publish(const broker::MessagePtr& msg, broker::Attachment publisher,
                  broker::PublishBatch* durable, broker::PublishOutcome& outcome);

  // A record no rule made: the cluster's forwards and shared state (src/cluster).
  struct OwnRecord {
    std::string topic;
    std::optional<std::string> key;
    std::string value;
    bool null_value = false;  // a tombstone (compacted topics)
    // Called on the poll thread once Kafka has the record: where it landed.
    std::function<void(int32_t partition, int64_t offset)> delivered;
  };
  enum class Delivery : uint8_t {
    // On behalf of a publisher: counts against the buffer (refused when full, pausing from 80%)
    // and is kept in the store until Kafka has it (in the publish's batch when there is one).
    Buffered,
    // Counted against the buffer like Buffered (refused when full, pausing from 80%) but not
    // stored: a QoS 0 forward, which the publisher was promised nothing about.
    Volatile,
    // The same as Buffered, but the publisher's acknowledgement waits for Kafka's (a gate in
    // outcome).
    Sync,
    // The broker's own state, rewritten at every start: retried until delivered, never
    // refused, not stored.
    Unstored,
    // State that exists nowhere else (a session moving to another node): stored like
    // Buffered, counted, but never refused.
    Kept,
  };
  void enqueue(OwnRecord&& record, Delivery delivery, broker::Attachment publisher,
               broker::PublishBatch* durable, broker::PublishOutcome& outcome);

  // Figures.
  uint64_t buffered_messages() const { return buffered_messages_.load(std::memory_order_relaxed); }
  uint64_t buffered_bytes() const { return buffered_bytes_.load(std::memory_order_relaxed); }
  uint64_t sync_waiting() const { return sync_waiting_.load(std::memory_order_relaxed); }
  // Did the last metadata request reach a broker? (every 5 s, on a thread of its own)
  bool reachable() const { return reachable_.load(std::memory_order_relaxed); }
  rd_kafka_t* handle() const { return rk_.get(); }

 private:
  struct Rule {
    config::KafkaProduceRule config;
    Template topic;
    Template key;
    bool has_key = true;
    bool sync = false;
    uint8_t headers = 0;      // HeaderBits
    std::string partitioner;  // librdkafka's name; empty: the default
  };
  // One record on its way to Kafka; librdkafka points into it until the delivery report.
  struct Record {
    uint64_t seq = 0;  // its K record (async with a store); 0: none
    uint32_t rule = 0;
    std::string topic;
    std::optional<std::string> key;
    // The value: the message's payload, shared (no copy), or for a record read back from the
    // store its own copy.
    broker::MessagePtr message;
    std::string stored_value;
    std::string_view value;
    bool null_value = false;
    bool buffered = false;  // counted in the buffer's figures
    std::function<void(int32_t partition, int64_t offset)> delivered;  // own records
    std::vector<std::pair<std::string, std::string>> headers;
    std::shared_ptr<broker::AckGate> gate;  // sync mode
    std::chrono::steady_clock::time_point produced_at{};
    std::chrono::steady_clock::time_point retry_at{};
    uint32_t attempts = 0;
    size_t bytes = 0;
  };

  // The rule index of records no rule made (OwnRecord); kept in their store records.
  static constexpr uint32_t kOwnRule = 0xFFFFFFFF;

  std::unique_ptr<Record> make_record(uint32_t rule_index, const Rule& rule,
                                      const broker::Message& msg) const;
  // Into the bounded buffer (and the store), or refused when it is full (outcome.refused).
  void buffer(std::unique_ptr<Record> rec, std::string_view what, broker::Attachment publisher,
              broker::PublishBatch* durable, broker::PublishOutcome& outcome,
              bool may_refuse = true, bool stored = true);
  void produce_sync(std::unique_ptr<Record> rec, broker::PublishOutcome& outcome);
  // Hands the record to librdkafka; a full local queue defers it to the retry list.
  void produce(std::unique_ptr<Record> record);
  void schedule_retry(std::unique_ptr<Record> record, std::chrono::milliseconds delay);
  void on_delivery(const rd_kafka_message_t* message);
  void finish_async(std::unique_ptr<Record> record);
  // Deletes the K records of acknowledged records in one store write (poll thread).
  void write_deletes();
  void poll_loop();
  void check_reachable();
  rd_kafka_topic_t* topic_handle(const Rule& rule, const std::string& topic);
  static void delivery_callback(rd_kafka_t* rk, const rd_kafka_message_t* message, void* opaque);

  const config::KafkaSettings settings_;
  store::Store* const store_;
  broker::ConnectionControl& connections_;
  std::vector<Rule> rules_;
  HandlePtr rk_;

  std::atomic<uint64_t> next_seq_{1};
  std::atomic<uint64_t> buffered_messages_{0};
  std::atomic<uint64_t> buffered_bytes_{0};
  std::atomic<uint64_t> sync_waiting_{0};
  std::atomic<bool> reachable_{false};

  std::mutex mutex_;
  std::deque<std::unique_ptr<Record>> retries_;             // by mutex_, in retry_at order
  std::vector<broker::Attachment> paused_publishers_;       // by mutex_
  std::map<std::string, rd_kafka_topic_t*> topic_handles_;  // by mutex_: rules with partitioners
  std::condition_variable wake_;
  bool stopping_ = false;              // by mutex_
  std::atomic<bool> dropping_{false};  // after stop: delivery reports only free their records
  // K records of acknowledged records, written together after each poll. Mostly the poll
  // thread; a record refused at once is finished on the publishing thread.
  std::mutex deletes_mutex_;
  store::Batch deletes_;  // by deletes_mutex_
  std::thread poller_;
  std::thread checker_;  // check_reachable every 5 s
};

}  // namespace starling::kafka
