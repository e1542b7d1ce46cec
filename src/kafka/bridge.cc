#include "kafka/bridge.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "config/kafka_template.h"
#include "kafka/schema_registry.h"
#include "metrics/prometheus.h"

namespace starling::kafka {

Bridge::Bridge(const config::KafkaSettings& settings, broker::Broker& broker,
               const std::string& instance)
    : settings_(settings), broker_(broker) {
  bootstrap_ = settings.bootstrap;
  if (settings.mock) {
    mock_ = std::make_unique<MockCluster>(static_cast<int>(settings.mock_brokers));
    if (bootstrap_.empty()) bootstrap_ = mock_->bootstrap();
    // The rules' named topics exist from the start (for kcat, and for consumers that would
    // otherwise wait for the first record to create them).
    for (const auto& rule : settings.produce) {
      Template t = Template::parse(rule.topic, Template::Direction::ToKafka);
      if (t.constant()) mock_->create_topic(t.literal(), 4);
    }
    for (const auto& rule : settings.consume) {
      for (const auto& topic : rule.topics)
        if (!topic.starts_with("^")) mock_->create_topic(topic, 4);
    }
    spdlog::info("kafka: mock cluster with {} broker(s) at {} (in memory: gone at exit)",
                 settings.mock_brokers, mock_->bootstrap());
  }
  if (!settings.schema_registry.empty()) {
    registry_ = std::make_unique<SchemaRegistry>(
        settings.schema_registry, std::chrono::milliseconds(settings.schema_registry_timeout_ms));
    decoder_ = std::make_unique<AvroConfluentDecoder>(*registry_);
  }
  producer_ =
      std::make_unique<Producer>(settings, bootstrap_, broker.store(), broker.connections());
  for (size_t i = 0; i < settings.consume.size(); ++i) {
    const auto& rule = settings.consume[i];
    AvroConfluentDecoder* decoder = rule.codec == "avro-confluent" ? decoder_.get() : nullptr;
    consumers_.push_back(
        std::make_unique<Consumer>(i, rule, settings, bootstrap_, broker, decoder, instance));
  }
}

Bridge::~Bridge() {
  stop_consumers();
  stop();
}

void Bridge::start() {
  producer_->start();
  for (auto& c : consumers_)
    c->start();
  spdlog::info("kafka: bridge to {}: {} produce rule(s), {} consume rule(s){}", bootstrap_,
               settings_.produce.size(), settings_.consume.size(),
               producer_->reachable() ? "" : " (no broker reachable yet)");
}

void Bridge::stop_consumers() {
  if (consumers_stopped_) return;
  consumers_stopped_ = true;
  for (auto& c : consumers_)
    c->stop_reading();
  // Offsets are stored as their batches become durable; then the close commits them.
  if (store::Store* store = broker_.store()) store->flush();
  for (auto& c : consumers_)
    c->close();
}

void Bridge::stop() {
  if (producer_) producer_->stop(std::chrono::seconds(5));
}

void Bridge::on_publish(const broker::MessagePtr& msg, broker::Attachment publisher,
                        broker::PublishBatch* durable, broker::PublishOutcome& outcome) {
  if (producer_->has_rules()) producer_->on_publish(msg, publisher, durable, outcome);
}

broker::BridgeStatus Bridge::status() const {
  broker::BridgeStatus s;
  s.ready = producer_->reachable();
  s.detail = (s.ready ? "reachable (" : "unreachable (") + bootstrap_ + ")";
  return s;
}

void Bridge::render_metrics(std::string& out) const {
  metrics::Writer w(out);
  w.family("kafka_reachable", "gauge", "1 when a Kafka broker answered the last check");
  w.sample("kafka_reachable", "", uint64_t{producer_->reachable() ? 1u : 0u});
  w.gauge("kafka_buffer_messages",
          "Records accepted by the async bridge and not yet acknowledged by Kafka",
          producer_->buffered_messages());
  w.gauge("kafka_buffer_bytes", "Bytes of the records in the async buffer",
          producer_->buffered_bytes());
  w.gauge("kafka_sync_waiting", "Sync-mode records waiting for Kafka's acknowledgement",
          producer_->sync_waiting());
  if (consumers_.empty()) return;
  auto labels = [](const Consumer& c) {
    return metrics::label("rule", std::to_string(c.index())) + "," +
           metrics::label("group", c.rule().group);
  };
  w.family("kafka_consumer_lag", "gauge",
           "Records behind the end of the assigned partitions, per consume rule (-1: unknown)");
  for (const auto& c : consumers_)
    w.sample("kafka_consumer_lag", labels(*c), c->lag());
  w.family("kafka_assigned_partitions", "gauge", "Partitions assigned, per consume rule");
  for (const auto& c : consumers_)
    w.sample("kafka_assigned_partitions", labels(*c), c->assigned_partitions());
}

}  // namespace starling::kafka
