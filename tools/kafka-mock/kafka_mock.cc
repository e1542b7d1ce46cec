// starling-kafka-mock: a librdkafka mock cluster (rdkafka_mock.h) on loopback for the Kafka
// bridge tests, driven through stdin so a Python test can take brokers down or inject errors
// while the broker under test is producing.
//
//   starling-kafka-mock [--brokers N]        (default 3; broker ids are 1..N)
//
// Prints one line `bootstrap HOST:PORT,...`, then answers every command line with one line,
// `ok` or `error REASON`:
//   topic NAME PARTITIONS [REPLICATION]   create a topic
//   topicerror NAME ERRCODE               Metadata answers ERRCODE for the topic (0: none)
//   leader TOPIC PARTITION BROKER_ID      move a partition's leader (-1: leaderless)
//   down BROKER_ID / up BROKER_ID         refuse / accept connections (-1: all brokers)
//   rtt BROKER_ID MS                      delay every answer of a broker by MS
//   errors APIKEY COUNT ERRCODE           fail the next COUNT requests of APIKEY with ERRCODE
//   clear APIKEY                          drop the errors still queued for APIKEY
//   quit                                  exit 0 (so does EOF on stdin, SIGTERM and SIGINT)
//
// Note (librdkafka 2.0.2): the mock speaks Metadata only up to v2, which has no
// AllowAutoTopicCreation flag, so any Metadata request naming an unknown topic creates it with
// 4 partitions, from producers and consumers alike, whatever allow.auto.create.topics says.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The cluster lives only in memory and its sockets close with the process, so a signal can
// end it at once; _exit is async-signal-safe where running the destructors from a handler is
// not.
extern "C" void on_signal(int) {
  _exit(0);
}

void reply(const std::string& line) {
  std::cout << line << '\n' << std::flush;  // the test waits for each line
}

std::string result(rd_kafka_resp_err_t err) {
  return err ? std::string("error ") + rd_kafka_err2name(err) : std::string("ok");
}

// Parses a whole decimal token into out; false for anything else, out-of-range values included.
template <typename T>
bool number(const std::string& token, T& out) {
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), out);
  return ec == std::errc() && end == token.data() + token.size();
}

// Runs one command line and returns the reply; sets quit on `quit`. Every command insists on
// its exact argument count, so that a typo in a test ("down 1 2") fails loudly instead of
// doing something else.
std::string run(rd_kafka_mock_cluster_t* mcluster, const std::string& line, bool& quit) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string token; in >> token;)
    w.push_back(token);
  const std::string& cmd = w[0];
  const size_t n = w.size();

  if (cmd == "topic") {
    int partitions = 0;
    int replication = 1;
    if ((n != 3 && n != 4) || !number(w[2], partitions) || partitions < 1 ||
        (n == 4 && !number(w[3], replication)))
      return "error usage: topic NAME PARTITIONS [REPLICATION]";
    // librdkafka 2.0.2 ignores the replication factor: every partition gets min(3, brokers)
    // replicas and a random one of them as leader (see `leader`).
    return result(rd_kafka_mock_topic_create(mcluster, w[1].c_str(), partitions, replication));
  }
  if (cmd == "topicerror") {
    int code = 0;
    if (n != 3 || !number(w[2], code)) return "error usage: topicerror NAME ERRCODE";
    // Since every Metadata request auto-creates the topics it names (see the note at the top),
    // this is how a test makes a topic look missing (3 = UNKNOWN_TOPIC_OR_PART); 0 clears it.
    rd_kafka_mock_topic_set_error(mcluster, w[1].c_str(), static_cast<rd_kafka_resp_err_t>(code));
    return "ok";
  }
  if (cmd == "leader") {
    int32_t partition = 0;
    int32_t broker = 0;
    if (n != 4 || !number(w[2], partition) || !number(w[3], broker))
      return "error usage: leader TOPIC PARTITION BROKER_ID";
    return result(rd_kafka_mock_partition_set_leader(mcluster, w[1].c_str(), partition, broker));
  }
  if (cmd == "down" || cmd == "up") {
    int32_t broker = 0;
    if (n != 2 || !number(w[1], broker)) return "error usage: " + cmd + " BROKER_ID";
    return result(cmd == "down" ? rd_kafka_mock_broker_set_down(mcluster, broker)
                                : rd_kafka_mock_broker_set_up(mcluster, broker));
  }
  if (cmd == "rtt") {
    int32_t broker = 0;
    int ms = 0;
    if (n != 3 || !number(w[1], broker) || !number(w[2], ms) || ms < 0)
      return "error usage: rtt BROKER_ID MS";
    return result(rd_kafka_mock_broker_set_rtt(mcluster, broker, ms));
  }
  if (cmd == "errors") {
    int16_t apikey = 0;
    int count = 0;
    int code = 0;
    if (n != 4 || !number(w[1], apikey) || !number(w[2], count) || count < 1 || count > 100000 ||
        !number(w[3], code))
      return "error usage: errors APIKEY COUNT ERRCODE";
    // The _array variant, since the variadic one takes its errors as separate arguments.
    std::vector<rd_kafka_resp_err_t> errors(count, static_cast<rd_kafka_resp_err_t>(code));
    rd_kafka_mock_push_request_errors_array(mcluster, apikey, errors.size(), errors.data());
    return "ok";
  }
  if (cmd == "clear") {
    int16_t apikey = 0;
    if (n != 2 || !number(w[1], apikey)) return "error usage: clear APIKEY";
    rd_kafka_mock_clear_request_errors(mcluster, apikey);
    return "ok";
  }
  if (cmd == "quit" && n == 1) {
    quit = true;
    return "ok";
  }
  return "error unknown command: " + line;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--brokers N]\n", argv[0]);
      return 2;
    }
  }
  if (brokers < 1) {
    std::fprintf(stderr, "--brokers must be at least 1\n");
    return 2;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  // The mock cluster needs a client handle for its thread and bookkeeping; the handle itself
  // never connects anywhere. log_level 4 hides its notice that no bootstrap.servers is set.
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* mcluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mcluster) {
    std::fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
    rd_kafka_destroy(rk);
    return 1;
  }
  reply(std::string("bootstrap ") + rd_kafka_mock_cluster_bootstraps(mcluster));

  bool quit = false;
  std::string line;
  while (!quit && std::getline(std::cin, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // w[0] exists
    reply(run(mcluster, line, quit));
  }
  rd_kafka_mock_cluster_destroy(mcluster);
  rd_kafka_destroy(rk);
  return 0;
}
