// The Kafka bridge: the producer of the [[kafka.produce]] rules, a consumer per
// [[kafka.consume]] rule, the schema registry client, and (kafka.mock = true) a mock cluster.
// The broker offers it every routed message (broker::ExternalBridge).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "broker/broker.h"
#include "config/config.h"
#include "kafka/consumer.h"
#include "kafka/mock_cluster.h"
#include "kafka/producer.h"

namespace starling::kafka {

class SchemaRegistry;
class AvroConfluentDecoder;

class Bridge final : public broker::ExternalBridge {
 public:
  // Throws std::runtime_error when a client cannot be created from the configuration.
  // instance: this broker's stable name ([cluster] node_id, "" without): consumers join
  // their groups as static members under it.
  Bridge(const config::KafkaSettings& settings, broker::Broker& broker,
         const std::string& instance = {});
  ~Bridge() override;

  // Produces what the store buffered before a restart, then starts the consumers.
  void start();
  // Shutdown, in two steps: the consumers first (nothing new comes in; routed offsets are
  // committed), then, once the listeners are closed, the producer.
  void stop_consumers();
  void stop();

  const std::string& bootstrap() const { return bootstrap_; }
  // The one producer of this broker: the rules' records and the cluster's.
  Producer& producer() { return *producer_; }

  // broker::ExternalBridge
  void on_publish(const broker::MessagePtr& msg, broker::Attachment publisher,
                  broker::PublishBatch* durable, broker::PublishOutcome& outcome) override;
  broker::BridgeStatus status() const override;
  void render_metrics(std::string& out) const override;

 private:
  const config::KafkaSettings settings_;
  broker::Broker& broker_;
  std::unique_ptr<MockCluster> mock_;
  std::string bootstrap_;
  std::unique_ptr<SchemaRegistry> registry_;
  std::unique_ptr<AvroConfluentDecoder> decoder_;
  std::unique_ptr<Producer> producer_;
  std::vector<std::unique_ptr<Consumer>> consumers_;
  bool consumers_stopped_ = false;
};

}  // namespace starling::kafka
