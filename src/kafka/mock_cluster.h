// librdkafka's mock cluster inside the broker (kafka.mock = true): a real Kafka protocol on
// loopback ports, in memory, for trying the bridge without a Kafka installation. Its
// bootstrap address is logged so that kcat or any client can join in.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <string>
#include <vector>

#include "kafka/client_config.h"

namespace starling::kafka {

class MockCluster {
 public:
  // Throws std::runtime_error when librdkafka cannot start it.
  explicit MockCluster(int brokers);
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  // Creates a topic (the mock would otherwise create it on first use with its default
  // partition count).
  void create_topic(const std::string& name, int partitions);

 private:
  HandlePtr rk_;  // the handle the cluster lives in
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

}  // namespace starling::kafka
