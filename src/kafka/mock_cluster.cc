#include "kafka/mock_cluster.h"

#include <stdexcept>

namespace starling::kafka {

MockCluster::MockCluster(int brokers) {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), log_to_spdlog);
  set(conf.get(), "log_level", "3");  // the handle only hosts the cluster: no "no bootstrap" note
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error);
  if (rk == nullptr) throw std::runtime_error(std::string("Kafka mock cluster: ") + error);
  conf.release();
  rk_.reset(rk);
  cluster_ = rd_kafka_mock_cluster_new(rk, brokers);
  if (cluster_ == nullptr) throw std::runtime_error("Kafka mock cluster: could not start");
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
}

MockCluster::~MockCluster() {
  if (cluster_) rd_kafka_mock_cluster_destroy(cluster_);
}

void MockCluster::create_topic(const std::string& name, int partitions) {
  rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
}

}  // namespace starling::kafka
