// The MQTT protocol state machine of one connection: CONNECT handshake, the QoS exchanges,
// subscriptions, keep-alive, wills, DISCONNECT. Runs on the connection's own worker thread and
// never blocks. It speaks to its socket only through Transport.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/acl.h"
#include "broker/authenticator.h"
#include "broker/broker.h"
#include "broker/events.h"
#include "broker/external_auth.h"
#include "broker/session.h"
#include "core/peer_address.h"
#include "core/ring_queue.h"
#include "mqtt/codec.h"
#include "mqtt/packet.h"

namespace starling::broker {

// Implemented by the net layer's connection.
class Transport {
 public:
  virtual ~Transport() = default;
  // Queues bytes for the socket, ahead of session output not yet taken.
  virtual void send(std::string_view bytes) = 0;
  // Flushes what is queued, then closes.
  virtual void close() = 0;
  virtual void pause_reading(bool paused) = 0;
  // Reading goes on, and frames already read are handled now (after a wait that held them).
  virtual void resume_input() { pause_reading(false); }
  virtual Attachment attachment() const = 0;
  virtual core::PeerAddress peer_address() const = 0;
  std::string peer() const { return peer_address().to_string(); }  // "address:port", for logs
  // The [listeners.NAME] the client came in on ("http" for WebSocket on the HTTP port).
  virtual const std::string& listener_name() const = 0;
  // The verified client certificate's CN, on a listener with username_from_cert.
  virtual std::optional<std::string> certificate_username() const = 0;
  // A bridge of this broker to another one (src/bridge): may use the "$bridge/" client ids.
  virtual bool is_bridge() const { return false; }
};

class Client {
 public:
  Client(Broker& broker, Transport& transport);
  ~Client();

  // The inbound packet size limit for framing.
  uint32_t max_packet_size() const { return max_packet_size_; }
  // A frame whose size exceeds max_packet_size(): answered with 0x95 and closed.
  void on_packet_too_large();
  // The first bytes on the connection are not a CONNECT: closed without an answer.
  void on_not_mqtt();
  // A frame with an invalid remaining length.
  void on_malformed_frame();
  // One whole packet. Returns false when the connection is being closed.
  bool on_packet(const mqtt::FrameHeader& header, std::string_view packet);
  // Once a second: keep-alive and connect timeout.
  void on_tick(Clock::time_point now);
  // The socket is gone (or about to be): wills and session bookkeeping.
  void on_closed();

  // Sends the publish acknowledgements whose bridge gates are done, in order (on wake-ups).
  void release_held_acks();

  // Asked by others (on this thread): taken over (0x8E), server shutting down (0x8B), kicked.
  void disconnect(uint8_t reason_code, const char* reason_string = nullptr);

  const SessionPtr& session() const { return session_; }
  bool connected() const { return connected_; }
  // No CONNECT yet: the next bytes must be one (not during a SCRAM exchange).
  bool expecting_connect() const { return !connected_ && !waiting_connect_; }
  // A packet (or the CONNECT) waits for an answer from elsewhere (the cluster, the HTTP auth
  // service): no further packet may be handled before it, even if reading resumes meanwhile.
  bool waiting() const {
    return (waiting_connect_ && waiting_connect_->kind != WaitKind::Scram) || pending_acl_;
  }
  // The HTTP auth service answered (posted to this client's loop). A client waits for one
  // question at a time (all of a SUBSCRIBE's together), and every question is answered, so an
  // answer always finds the wait it belongs to (a closed connection's are dropped on the way).
  void on_connect_answer(const ConnectAnswer& answer);
  void on_acl_answer(const std::string& topic, Decision decision);
  // What waited for the cluster is done: the session this CONNECT waited for came from another
  // node (or will not), or every node knows the routes of a SUBSCRIBE. The connection goes on
  // (ConnectionControl::cluster_wait_over).
  void cluster_wait_over();
  std::string_view client_id() const {
    return session_             ? session_->client_id()
           : pending_client_id_ ? std::string_view(*pending_client_id_)
                                : std::string_view();
  }
  // The settings in force when the connection started.
  const config::Config& settings() const { return *settings_; }

 private:
  bool handle_connect(uint8_t flags, std::string_view body);
  // CONNECT after authentication: session, CONNACK. auth_props: Authentication Method/Data
  // for the CONNACK of an enhanced authentication.
  bool finish_connect(mqtt::Connect& c, bool assigned_id, mqtt::Properties auth_props);
  // The ACL for the authenticated client; refuses (0x87) a will it may not publish. False also
  // when the will waits for the HTTP service (pending_acl_).
  bool authorize(const mqtt::Connect& c);
  // A CONNECT's verdict from the Authenticator, in place or after the HTTP service answered.
  bool on_connect_verdict(Authenticator::Verdict& verdict, mqtt::Connect& c, bool assigned);
  ClientOrigin origin() const;
  // Authorization beyond the ACL file: superuser, the token's or HTTP answer's rules, the HTTP
  // service's acl_url (docs/configuration.md, "The authorization chain"). Ask: the service was
  // asked; the packet waits for its answer (hold_for_acl).
  enum class Access : uint8_t { Allow, Deny, Ask };
  bool external_acl() const { return auth_.grant() != nullptr || acl_url_; }
  Access access(AclAction action, std::string_view topic, uint8_t qos, bool retain);
  bool hold_for_acl(std::string_view packet, uint32_t asks);
  // A held packet runs again with all its answers (not counted again, nothing asked again).
  bool rerunning() const { return pending_acl_ && pending_acl_->rerun; }
  // The ACL to hand the front door for a publish the chain decided.
  const auth::ClientAcl* decided_acl(bool allowed) const;
  void emit_connected();
  // session.subscribed (with the granted QoS) or session.unsubscribed, when a webhook wants it.
  void emit_subscription(EventKind kind, const std::string& filter, uint8_t qos);
  void emit_disconnected();
  // Compiles the ACL ([auth] acl_file as loaded now) for the authenticated client.
  void compile_acl();
  // The ACL for per-message read checks: null when it reads everything (no check needed).
  // Clients with rules of their own or under acl_url are checked when they subscribe, not per
  // message (as EMQX).
  std::shared_ptr<const auth::ClientAcl> readable_acl() const {
    return acl_ && !acl_->reads_everything() && !external_acl() ? acl_ : nullptr;
  }
  // An AUTH packet during the CONNECT's SCRAM exchange.
  bool handle_connect_auth(uint8_t flags, std::string_view body);
  void send_auth(uint8_t reason_code, std::string_view method, std::string data);
  // An AUTH packet once connected: re-authentication (section 4.12.1).
  bool handle_reauth(uint8_t flags, std::string_view body);
  bool reauth_failed(const std::string& why);
  bool handle_publish(const mqtt::FrameHeader& header, std::string_view packet,
                      std::string_view body);
  // This client as the front door sees it.
  Publisher publisher() const {
    return Publisher{.settings = settings_.get(),
                     .client_id = client_id(),
                     .username = auth_.username(),
                     .session = session_.get(),
                     .link = transport_.attachment(),
                     .acl = acl_.get()};
  }
  // The MQTT answer to a publish the front door took or refused.
  bool answer_publish(uint8_t qos, uint16_t packet_id, PublishResult& result);
  bool handle_ack(mqtt::PacketType type, uint8_t flags, std::string_view body);
  bool handle_subscribe(uint8_t flags, std::string_view body, std::string_view packet);
  bool handle_unsubscribe(uint8_t flags, std::string_view body);
  bool handle_disconnect(uint8_t flags, std::string_view body);

  // Sends DISCONNECT (5.0) with the reason and closes; returns false for on_packet.
  bool fail(uint8_t reason_code, const char* why);
  void refuse_connect(uint8_t reason_code, const char* why);
  void send_connack(bool session_present, uint8_t reason_code, mqtt::Properties props);
  // Answers to a connected client (acks, SUBACK, PINGRESP): sent once store ticket is durable.
  void reply(std::string_view bytes, uint64_t ticket = 0);
  bool problem_information() const { return request_problem_information_; }
  // A PUBACK/PUBREC: behind the held ones, or waiting for gate, or out now.
  void acknowledge_publish(uint8_t qos, uint16_t packet_id, uint8_t reason_code, uint64_t ticket,
                           std::shared_ptr<AckGate> gate);
  // A QoS 2 exchange ended with an error: the packet id may be used for a new message.
  void forget_inbound_qos2(uint16_t packet_id);
  // Receive Maximum QoS 1 and 2 messages from the client are not answered yet (PUBACK held,
  // PUBCOMP not sent).
  bool inbound_window_full();
  bool malformed_filter();  // closes (see client.cc for the decision)
  // A protocol violation that has no answer (3.1.1 before CONNACK, not MQTT at all): counted,
  // closed without a packet.
  void close_for_protocol_error();
  void send_publish_ack(uint8_t qos, uint16_t packet_id, uint8_t reason_code, uint64_t ticket);

  // Publish acknowledgements that wait for the Kafka bridge (sync mode), and those behind them:
  // acknowledgements leave in the order of their PUBLISHes.
  struct HeldAck {
    std::shared_ptr<AckGate> gate;  // null: waits only for the ones before it
    uint16_t packet_id;
    uint8_t qos;
    uint8_t reason_code;
    uint64_t ticket;
  };
  core::RingQueue<HeldAck> held_acks_;

  Broker& broker_;
  Transport& transport_;
  std::shared_ptr<const config::Config> settings_;  // in force when the connection started
  // The CONNECT's client id until the session is open; then the session's (one copy per client).
  std::unique_ptr<std::string> pending_client_id_;
  // What the client may publish and subscribe to ([auth] acl_file); null: anything.
  std::shared_ptr<const auth::ClientAcl> acl_;
  // Who the client is (password, certificate, anonymous, SCRAM and re-authentication).
  Authenticator auth_;
  // A CONNECT waiting for the end of its SCRAM exchange (the client's AUTH), or for its session
  // to come from another node of the cluster (reading is paused meanwhile).
  enum class WaitKind : uint8_t {
    Scram,    // the client's AUTH
    Cluster,  // the session from another node
    Service,  // the HTTP auth service's answer (the CONNECT, or its will's ACL)
  };
  struct WaitingConnect {
    mqtt::Connect connect;
    bool assigned = false;        // the client id was assigned by us
    mqtt::Properties properties;  // for the CONNACK (a finished SCRAM exchange's)
    WaitKind kind = WaitKind::Scram;
  };
  std::unique_ptr<WaitingConnect> waiting_connect_;
  // A PUBLISH or SUBSCRIBE (or the CONNECT's will, packet empty) waiting for the HTTP service's
  // ACL answers; run again with them once all came (reading paused meanwhile).
  struct PendingAcl {
    std::string packet;
    uint32_t waiting = 0;
    bool rerun = false;  // all answers are in: the packet runs again
    std::vector<std::pair<std::string, Decision>> answers;
  };
  std::unique_ptr<PendingAcl> pending_acl_;

  struct HeldSuback {
    struct Accepted {
      std::string filter;
      SubscriptionOptions options;
      bool existed;
      bool shared;
    };
    std::string bytes;
    uint64_t ticket = 0;
    std::vector<Accepted> accepted;
  };
  // A SUBACK waiting until the other nodes know its routes (reading paused meanwhile), and
  // the retained messages that follow it.
  std::unique_ptr<HeldSuback> held_suback_;
  void send_suback_and_retained(HeldSuback& held);
  SessionPtr session_;
  std::unique_ptr<mqtt::Will> will_;  // on the heap: most clients have none (560 bytes)
  // The small fields together (no padding between them: every connection has a Client).
  uint32_t max_packet_size_;
  uint32_t client_maximum_packet_size_ = 0;  // from its CONNECT (5.0); 0: no limit
  uint16_t keep_alive_ = 0;                  // seconds, as in force (server keep alive applied)
  uint16_t receive_maximum_;
  uint16_t topic_alias_maximum_;
  mqtt::Version version_ = mqtt::Version::V311;
  uint8_t disconnect_reason_ = 0xFF;  // the reason code of the end, for client.disconnected
  bool connected_ = false;
  bool closing_ = false;
  bool request_problem_information_ = true;
  bool bridge_peer_ = false;  // the client is another broker's bridge (3.1.1 bridge flag)
  bool session_expiry_was_zero_ = true;
  bool session_awaited_ = false;  // asked once: the second finish_connect goes on
  bool paused_for_held_acks_ = false;
  bool acl_url_ = false;  // [auth.http] acl_url is asked for this client
  // Topic aliases from the client (index = alias - 1), made at its first alias.
  std::unique_ptr<std::vector<std::string>> inbound_aliases_;
  // The last packet from the client once connected; before, when the connection began.
  Clock::time_point last_packet_at_;
};

}  // namespace starling::broker
