// One bridge to another MQTT broker: an outgoing connection (TCP, optionally TLS) that lives on
// a worker's loop. Two halves meet in it:
//  - towards the remote, it is an MQTT client: CONNECT, SUBSCRIBE for the `in` rules (No Local,
//    or the 3.1.1 bridge flag), keep-alive, reconnect with backoff over the addresses in turn;
//  - towards this broker, it is a client too: a broker::Client of its own, given a CONNECT for
//    the persistent session "$bridge/<name>" and a SUBSCRIBE for the `out` rules (No Local,
//    Retain As Published). That session is the outgoing queue: bounded, in the store, resent
//    with DUP after a reconnect, QoS 2 exactly once, like any persistent session's. What comes
//    in is handed to the local Client as its PUBLISHes, so it enters through the front door
//    under the bridge's identity (ACL, limits), and its acknowledgements go back to the remote.
// Between the halves, PUBLISH topics are renamed (TopicMap) and packets re-encoded for the
// remote's protocol version; the local side always speaks 5.0.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "bridge/topic_map.h"
#include "broker/client.h"
#include "broker/mqtt_bridges.h"
#include "config/bridge_settings.h"
#include "core/event_loop.h"
#include "mqtt/codec.h"
#include "net/layers/tls.h"
#include "net/worker.h"

namespace starling::bridge {

class BridgeLink final : public core::IoHandler,
                         public broker::Transport,
                         public net::LoopEndpoint {
 public:
  // Lives on worker's loop; token is its number there (Server::new_token).
  BridgeLink(config::BridgeSettings settings, broker::Broker& broker, net::Worker& worker,
             uint64_t token);
  ~BridgeLink() override;
  BridgeLink(const BridgeLink&) = delete;
  BridgeLink& operator=(const BridgeLink&) = delete;

  // Loop thread: registers on the loop, makes the local session and its subscriptions, and
  // starts connecting.
  void start();
  // Loop thread: says goodbye to the remote (DISCONNECT), detaches the session, unregisters.
  void stop();
  const config::BridgeSettings& settings() const { return settings_; }
  // Any thread.
  broker::MqttBridgeInfo info() const;

  // core::IoHandler
  void on_io(uint32_t events) override;
  // net::LoopEndpoint
  void flush() override;
  broker::Client* client() override { return local_.get(); }
  void pause_reading(bool paused) override;
  // broker::Transport (what the local Client sends is for the remote, translated)
  void send(std::string_view bytes) override;
  void close() override;
  broker::Attachment attachment() const override;
  core::PeerAddress peer_address() const override { return core::PeerAddress(remote_name_); }
  const std::string& listener_name() const override { return listener_name_; }
  std::optional<std::string> certificate_username() const override;
  bool is_bridge() const override { return true; }

 private:
  enum class State : uint8_t { Backoff, Connecting, AwaitConnack, Subscribing, Up };
  using Clock = broker::Clock;

  void tick();
  void connect_next();
  void connected_tcp();
  void send_connect();
  void on_remote_bytes(std::string_view bytes);
  bool on_remote_packet(const mqtt::FrameHeader& header, std::string_view packet);
  bool on_connack(std::string_view body, uint8_t flags);
  void subscribe_remote();
  void remote_up();
  // A SUBACK's refusals of subs (in request order): logged at level, kept as the last error.
  void note_refusals(const mqtt::Suback& ack, const std::vector<Subscription>& subs,
                     const char* who, spdlog::level::level_enum level);
  // A PUBLISH from the remote: renamed and handed to the local Client.
  bool remote_publish(const mqtt::FrameHeader& header, std::string_view body);
  // An ack from the remote: to the local Client in 5.0 form.
  bool remote_ack(mqtt::PacketType type, uint8_t flags, std::string_view body);
  // Bytes of the local Client (5.0 packets): translated for the remote, or taken here.
  void from_local(std::string_view bytes);
  void local_packet(const mqtt::FrameHeader& header, std::string_view packet);
  // The local session: opened (CONNECT, SUBSCRIBE) or closed (the session stays, offline).
  void open_local();
  void close_local();
  // Remote connection lost or refused: the local session goes offline; retried after backoff.
  void fail(std::string why, const char* reason);
  void drop_connection();
  void write_remote(std::string_view plaintext);
  void write_some();
  void update_interest();
  void read_some();
  void set_state(State s);
  std::chrono::milliseconds next_backoff();

  const config::BridgeSettings settings_;
  broker::Broker& broker_;
  net::Worker& worker_;
  const uint64_t token_;
  const TopicMap map_;
  const mqtt::Version remote_version_;
  const std::string listener_name_;
  std::shared_ptr<net::TlsContext> tls_context_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for the loop's timer

  // The remote connection (loop thread).
  int fd_ = -1;
  size_t address_index_ = 0;  // the address tried now or next
  size_t attempts_in_round_ = 0;
  unsigned failures_ = 0;         // consecutive rounds without a CONNACK: the backoff doubles
  bool use_bridge_flag_;          // 3.1.1: try the bridge flag (dropped when refused)
  Clock::time_point deadline_{};  // connect timeout, or the end of the backoff
  Clock::time_point last_sent_{};
  Clock::time_point last_received_{};
  bool ping_outstanding_ = false;
  uint16_t subscribe_id_ = 0;  // the remote SUBSCRIBE waited for
  std::unique_ptr<net::TlsLayer> tls_;
  std::string rbuf_;  // plaintext from the remote, an incomplete frame
  std::string wbuf_;  // bytes for the socket (after TLS)
  size_t wpos_ = 0;
  bool want_write_ = false;
  bool reading_paused_ = false;
  uint32_t remote_max_packet_ = 0;  // 0: no limit
  uint16_t remote_receive_max_ = 65535;

  // The local side.
  std::unique_ptr<broker::Client> local_;
  std::string local_buf_;          // local bytes not yet cut into packets
  uint64_t local_generation_ = 0;  // counts local closes (frames of a closed one are left)
  bool in_from_local_ = false;

  // Shared with info() on other threads.
  mutable std::mutex mutex_;
  State state_ = State::Backoff;
  std::string remote_name_;  // "host:port" in use
  std::string last_error_;
  int64_t connected_since_ms_ = 0;
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> received_{0};
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> connect_failures_{0};
  std::atomic<uint64_t> unmatched_{0};
  std::map<std::string, uint64_t> failures_by_reason_;  // by mutex_
};

}  // namespace starling::bridge
