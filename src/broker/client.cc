#include "broker/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <random>

#include "broker/events.h"
#include "core/event_loop.h"
#include "metrics/counters.h"
#include "mqtt/topic.h"

namespace starling::broker {

namespace {

using mqtt::PacketType;
using mqtt::Version;
namespace rc = mqtt::reason;

std::string assign_client_id() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("starling-{:012x}-{}", rng() & 0xFFFFFFFFFFFFull,
                     counter.fetch_add(1, std::memory_order_relaxed));
}

}  // namespace

Client::Client(Broker& broker, Transport& transport)
    : broker_(broker),
      transport_(transport),
      settings_(broker.settings()),
      auth_(broker.access(), *settings_),
      last_packet_at_(core::EventLoop::now()) {
  max_packet_size_ = settings_->mqtt.max_packet_size;
  receive_maximum_ = settings_->mqtt.receive_maximum;
  topic_alias_maximum_ = settings_->mqtt.topic_alias_maximum;
}

Client::~Client() = default;

// --- Failure paths --------------------------------------------------------------------------

bool Client::fail(uint8_t reason_code, const char* why) {
  if (closing_) return false;
  disconnect_reason_ = reason_code;
  spdlog::debug("client '{}' ({}): closing: {} (0x{:02x})", client_id(), transport_.peer(), why,
                reason_code);
  metrics::add(metrics::Counter::ProtocolErrors);
  if (connected_ && version_ == Version::V5) {
    mqtt::Disconnect d;
    d.reason_code = reason_code;
    if (problem_information()) d.properties.reason_string = why;
    std::string bytes;
    mqtt::encode_disconnect(d, version_, bytes);
    transport_.send(bytes);
    metrics::count_packet_out(PacketType::Disconnect);
  }
  closing_ = true;
  transport_.close();
  return false;
}

void Client::refuse_connect(uint8_t reason_code, const char* why) {
  spdlog::debug("connect from {} refused: {} (0x{:02x})", transport_.peer(), why, reason_code);
  metrics::add(metrics::Counter::ConnectionsRefused);
  mqtt::Properties props;
  if (version_ == Version::V5 && problem_information()) props.reason_string = why;
  send_connack(false, reason_code, std::move(props));
  closing_ = true;
  transport_.close();
}

void Client::send_connack(bool session_present, uint8_t reason_code, mqtt::Properties props) {
  mqtt::Connack ack;
  ack.session_present = session_present;
  ack.reason_code = reason_code;
  ack.properties = std::move(props);
  std::string bytes;
  mqtt::encode_connack(ack, version_, bytes);
  if (client_maximum_packet_size_ != 0 && bytes.size() > client_maximum_packet_size_) {
    // Too large for the client: without the properties that may be left out
    // ([MQTT-3.2.2-19], [MQTT-3.2.2-20]; Response Information is only a courtesy).
    ack.properties.reason_string.reset();
    ack.properties.user_properties.clear();
    ack.properties.response_information.reset();
    bytes.clear();
    mqtt::encode_connack(ack, version_, bytes);
  }
  transport_.send(bytes);
  metrics::count_packet_out(PacketType::Connack);
}

void Client::reply(std::string_view bytes, uint64_t ticket) {
  // Through the session, behind anything it still waits to send and after ticket is durable.
  session_->append_output(bytes, transport_.attachment(), ticket);
}

void Client::on_packet_too_large() {
  metrics::add(metrics::Counter::LimitPacketSize);
  if (!connected_) {
    closing_ = true;
    transport_.close();
    return;
  }
  fail(rc::PacketTooLarge, "packet exceeds the maximum packet size");
}

void Client::on_not_mqtt() {
  close_for_protocol_error();
}

void Client::close_for_protocol_error() {
  metrics::add(metrics::Counter::ProtocolErrors);
  closing_ = true;
  transport_.close();
}

void Client::on_malformed_frame() {
  fail(rc::MalformedPacket, "malformed remaining length");
}

void Client::disconnect(uint8_t reason_code, const char* reason_string) {
  if (closing_) return;
  disconnect_reason_ = reason_code;
  if (connected_ && version_ == Version::V5) {
    mqtt::Disconnect d;
    d.reason_code = reason_code;
    if (reason_string && problem_information()) d.properties.reason_string = reason_string;
    std::string bytes;
    mqtt::encode_disconnect(d, version_, bytes);
    transport_.send(bytes);
    metrics::count_packet_out(PacketType::Disconnect);
  }
  closing_ = true;
  transport_.close();
}

// --- Dispatch -------------------------------------------------------------------------------

bool Client::on_packet(const mqtt::FrameHeader& header, std::string_view packet) {
  if (closing_) return false;
  // Before the CONNACK the time stays when the connection began (the connect timeout runs from
  // it); the CONNACK sets it (keep-alive).
  if (connected_) last_packet_at_ = core::EventLoop::now();
  metrics::count_packet_in(header.type(), packet.size());
  std::string_view body = packet.substr(header.header_size);
  const PacketType type = header.type();
  if (waiting_connect_ && waiting_connect_->kind == WaitKind::Scram) {
    // Between CONNECT and CONNACK only the SCRAM exchange's AUTH may come.
    if (type == PacketType::Auth) return handle_connect_auth(header.flags(), body);
    refuse_connect(rc::ProtocolError,
                   "only AUTH may follow a CONNECT under enhanced authentication");
    return false;
  }
  if (!connected_) {
    if (type != PacketType::Connect) {
      closing_ = true;
      transport_.close();  // the first packet must be CONNECT (3.1.0-1): close, no answer
      return false;
    }
    return handle_connect(header.flags(), body);
  }
  switch (type) {
    case PacketType::Publish:
      return handle_publish(header, packet, body);
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      return handle_ack(type, header.flags(), body);
    case PacketType::Subscribe:
      return handle_subscribe(header.flags(), body, packet);
    case PacketType::Unsubscribe:
      return handle_unsubscribe(header.flags(), body);
    case PacketType::Pingreq: {
      auto st = mqtt::decode_empty(header.flags(), body);
      if (!st.ok()) return fail(st.code, st.message);
      std::string bytes;
      mqtt::encode_pingresp(bytes);
      reply(bytes);
      metrics::count_packet_out(PacketType::Pingresp);
      return true;
    }
    case PacketType::Disconnect:
      return handle_disconnect(header.flags(), body);
    case PacketType::Connect:
      return fail(rc::ProtocolError, "second CONNECT on a connection");
    case PacketType::Auth:
      return handle_reauth(header.flags(), body);
    default:
      return fail(rc::MalformedPacket, "packet type not allowed from a client");
  }
}

// --- CONNECT --------------------------------------------------------------------------------

bool Client::handle_connect(uint8_t flags, std::string_view body) {
  const auto& mqtt_cfg = settings_->mqtt;
  mqtt::Connect c;
  mqtt::Status st = mqtt::decode_connect(flags, body, c);
  version_ = c.version;
  if (!st.ok()) {
    if (st.code == rc::UnsupportedProtocolVersion) {
      // Answer in a form the client can read: 3.1.1 CONNACK code 1 unless it asked for 5.0.
      refuse_connect(rc::UnsupportedProtocolVersion, st.message);
    } else if (version_ == Version::V5) {
      refuse_connect(st.code, st.message);
    } else {
      close_for_protocol_error();
    }
    return false;
  }
  if (c.properties.request_problem_information) {
    request_problem_information_ = *c.properties.request_problem_information != 0;
  }
  client_maximum_packet_size_ = c.properties.maximum_packet_size.value_or(0);

  // Client identifier.
  bool assigned = false;
  if (c.client_id.empty()) {
    if (!mqtt_cfg.allow_empty_client_id || version_ == Version::V31 ||
        (version_ == Version::V311 && !c.clean_start)) {
      refuse_connect(rc::ClientIdentifierNotValid, "empty client identifier");
      return false;
    }
    c.client_id = assign_client_id();
    assigned = true;
  }
  // MQTT 3.1 allows 1 to 23 characters (its section 3.1, like Mosquitto); 3.1.1 and 5.0 leave
  // the length to the server: [limits] max_client_id_length.
  if (c.client_id.size() > settings_->limits.max_client_id_length ||
      (version_ == Version::V31 && c.client_id.size() > 23)) {
    refuse_connect(rc::ClientIdentifierNotValid, "client identifier too long");
    return false;
  }

  if (c.client_id.starts_with(config::kBridgeClientIdPrefix) && !transport_.is_bridge()) {
    refuse_connect(rc::ClientIdentifierNotValid,
                   "client identifiers starting with $bridge/ are "
                   "the bridges' own");
    return false;
  }
  bridge_peer_ = c.bridge;

  // Will.
  if (c.will) {
    if (!mqtt::valid_topic_name(c.will->topic)) {
      // 5.0 has a CONNACK code for it (0x90); in 3.1.1 an invalid topic name is a protocol
      // violation ([MQTT-4.7.3-1], [MQTT-4.8.0-1]): its CONNACK codes have nothing that fits
      // (3 would tell the client to come back later), so the connection is closed.
      if (version_ != Version::V5) {
        close_for_protocol_error();
        return false;
      }
      refuse_connect(rc::TopicNameInvalid, "invalid will topic");
      return false;
    }
    if (c.will->qos > mqtt_cfg.max_qos) {
      refuse_connect(rc::QosNotSupported, "will QoS above the maximum QoS");
      return false;
    }
    if (c.will->retain && !mqtt_cfg.retain_available) {
      refuse_connect(rc::RetainNotSupported, "retained wills are not available");
      return false;
    }
  }

  pending_client_id_ = std::make_unique<std::string>(c.client_id);  // until the session has it
  Authenticator::Verdict verdict = auth_.connect(
      c, origin(),
      [control = &broker_.connections(), link = transport_.attachment()](ConnectAnswer a) {
        control->post_to_client(
            link, [a = std::move(a)](Client& client) { client.on_connect_answer(a); });
      });
  if (verdict.outcome == Authenticator::Outcome::Pending) {
    // The HTTP service decides: the CONNECT waits, reading nothing meanwhile.
    waiting_connect_ = std::make_unique<WaitingConnect>(
        WaitingConnect{std::move(c), assigned, mqtt::Properties{}, WaitKind::Service});
    transport_.pause_reading(true);
    return true;
  }
  return on_connect_verdict(verdict, c, assigned);
}

ClientOrigin Client::origin() const {
  return ClientOrigin{transport_.listener_name(), transport_.certificate_username(),
                      transport_.peer_address(), transport_.is_bridge()};
}

bool Client::on_connect_verdict(Authenticator::Verdict& verdict, mqtt::Connect& c, bool assigned) {
  switch (verdict.outcome) {
    case Authenticator::Outcome::Refused:
      refuse_connect(verdict.reason_code, verdict.reason.c_str());
      return false;
    case Authenticator::Outcome::Continue:
      // SCRAM: the CONNECT waits for the client's AUTH.
      send_auth(rc::ContinueAuthentication, auth_.method(), std::move(verdict.data));
      waiting_connect_ = std::make_unique<WaitingConnect>(
          WaitingConnect{std::move(c), assigned, mqtt::Properties{}, WaitKind::Scram});
      return true;
    case Authenticator::Outcome::Pending:  // only from connect(), handled there
    case Authenticator::Outcome::Accepted:
      break;
  }
  ExternalAuth* external = broker_.access().external();
  // Bridges keep to the ACL file (their local_username's rules), as at CONNECT.
  acl_url_ = external != nullptr && external->checks_acl() && !transport_.is_bridge() &&
             !(auth_.grant() != nullptr && auth_.grant()->superuser);
  if (!authorize(c)) {
    if (pending_acl_) {
      // The will's topic waits for the HTTP service: so does the CONNECT.
      pending_acl_->waiting = 1;
      waiting_connect_ = std::make_unique<WaitingConnect>(
          WaitingConnect{std::move(c), assigned, mqtt::Properties{}, WaitKind::Service});
      transport_.pause_reading(true);
      return true;
    }
    return false;
  }
  return finish_connect(c, assigned, {});
}

void Client::on_connect_answer(const ConnectAnswer& answer) {
  if (closing_ || !waiting_connect_ || waiting_connect_->kind != WaitKind::Service ||
      pending_acl_) {
    return;  // closing
  }
  const std::unique_ptr<WaitingConnect> waited = std::move(waiting_connect_);
  Authenticator::Verdict verdict = auth_.resume_connect(waited->connect, origin(), answer);
  if (on_connect_verdict(verdict, waited->connect, waited->assigned) && !waiting()) {
    transport_.resume_input();  // packets sent behind the CONNECT
  }
}

void Client::on_acl_answer(const std::string& topic, Decision decision) {
  if (closing_ || !pending_acl_ || pending_acl_->waiting == 0) return;  // closing
  PendingAcl& p = *pending_acl_;
  p.answers.emplace_back(topic, decision);
  if (--p.waiting > 0) return;
  if (p.packet.empty()) {
    // The CONNECT's will: authorize again with the answer, then the CONNECT goes on.
    if (!waiting_connect_) return;
    const std::unique_ptr<WaitingConnect> waited = std::move(waiting_connect_);
    const bool ok = authorize(waited->connect);
    pending_acl_.reset();
    if (ok && finish_connect(waited->connect, waited->assigned, {}) && !waiting()) {
      transport_.resume_input();
    }
    return;
  }
  // The held packet runs again, finding its answers in pending_acl_ this time.
  const std::string packet = std::move(p.packet);
  p.rerun = true;
  mqtt::FrameHeader header;
  mqtt::read_frame_header(packet, 0xFFFFFFFF, header);
  const std::string_view body = std::string_view(packet).substr(header.header_size);
  bool open = true;
  if (header.type() == PacketType::Publish) {
    open = handle_publish(header, packet, body);
  } else {
    open = handle_subscribe(header.flags(), body, packet);
  }
  pending_acl_.reset();
  if (open && !closing_ && !waiting()) transport_.resume_input();
}

bool Client::hold_for_acl(std::string_view packet, uint32_t asks) {
  pending_acl_->packet.assign(packet);
  pending_acl_->waiting = asks;
  transport_.pause_reading(true);
  return true;
}

Client::Access Client::access(AclAction action, std::string_view topic, uint8_t qos, bool retain) {
  const Grant* grant = auth_.grant();
  if (grant && grant->superuser) return Access::Allow;
  if (grant && grant->rules) {
    const std::optional<bool> r = action == AclAction::Publish
                                      ? grant->rules->check_publish(topic, qos, retain)
                                      : grant->rules->check_subscribe(topic);
    if (r) return *r ? Access::Allow : Access::Deny;
  }
  if (acl_url_) {
    std::optional<Decision> decision;
    if (pending_acl_) {
      for (const auto& [t, d] : pending_acl_->answers) {
        if (t == topic) decision = d;
      }
    }
    if (!decision) {
      const bool created = !pending_acl_;
      if (created) pending_acl_ = std::make_unique<PendingAcl>();
      AclQuery q;
      q.client_id = std::string(client_id());
      if (!auth_.username().empty()) q.username = std::string(auth_.username());
      q.peerhost = transport_.peer_address().host();
      q.action = action;
      q.topic = std::string(topic);
      q.qos = qos;
      q.retain = retain;
      decision = broker_.access().external()->acl(
          q, [control = &broker_.connections(), link = transport_.attachment(),
              topic = std::string(topic)](Decision d) {
            control->post_to_client(link,
                                    [topic, d](Client& client) { client.on_acl_answer(topic, d); });
          });
      if (!decision) return Access::Ask;
      if (created) pending_acl_.reset();  // answered from the cache: nothing waits
    }
    if (*decision == Decision::Failed) {
      decision = settings_->auth.http.on_error == "ignore" ? Decision::Ignore : Decision::Deny;
    }
    if (*decision == Decision::Allow) return Access::Allow;
    if (*decision == Decision::Deny) return Access::Deny;
  }
  // The ACL file has the last word. Without one, a client that has rules of its own or is
  // subject to acl_url gets only what they allowed (as with an ACL file: no match is deny).
  if (!acl_) return (grant && grant->rules) || acl_url_ ? Access::Deny : Access::Allow;
  const bool ok =
      action == AclAction::Publish ? acl_->can_publish(topic) : acl_->can_subscribe(topic);
  return ok ? Access::Allow : Access::Deny;
}

const auth::ClientAcl* Client::decided_acl(bool allowed) const {
  static const auth::ClientAcl everything = auth::ClientAcl::allow_all();
  static const auth::ClientAcl nothing;
  return allowed ? &everything : &nothing;
}

void Client::compile_acl() {
  acl_ = auth_.compile_acl(client_id());
}

bool Client::authorize(const mqtt::Connect& c) {
  compile_acl();
  if (c.will && external_acl()) {
    switch (access(AclAction::Publish, c.will->topic, c.will->qos, c.will->retain)) {
      case Access::Allow:
        return true;
      case Access::Ask:
        return false;  // pending_acl_ says the CONNECT waits
      case Access::Deny:
        metrics::add(metrics::Counter::AclDeniedPublish);
        refuse_connect(rc::NotAuthorized, "the will topic is not allowed");
        return false;
    }
  }
  if (c.will && acl_ && !acl_->can_publish(c.will->topic)) {
    metrics::add(metrics::Counter::AclDeniedPublish);
    refuse_connect(rc::NotAuthorized, "the ACL does not allow the will topic");
    return false;
  }
  return true;
}

bool Client::handle_connect_auth(uint8_t flags, std::string_view body) {
  mqtt::Auth a;
  mqtt::Status st = mqtt::decode_auth(flags, body, version_, a);
  if (!st.ok()) {
    refuse_connect(st.code, st.message);
    return false;
  }
  if (a.reason_code != rc::ContinueAuthentication ||
      a.properties.authentication_method !=
          waiting_connect_->connect.properties.authentication_method) {
    refuse_connect(rc::ProtocolError, "AUTH must continue the CONNECT's authentication method");
    return false;
  }
  Authenticator::Verdict verdict =
      auth_.continue_connect(a.properties.authentication_data.value_or(""), transport_.peer());
  if (verdict.outcome != Authenticator::Outcome::Accepted) {
    refuse_connect(verdict.reason_code, verdict.reason.c_str());
    return false;
  }
  const std::unique_ptr<WaitingConnect> waited = std::move(waiting_connect_);
  mqtt::Connect& c = waited->connect;
  if (!authorize(c)) return false;
  mqtt::Properties auth_props;
  auth_props.authentication_method = c.properties.authentication_method;
  auth_props.authentication_data = std::move(verdict.data);  // server-final: proves us to it
  return finish_connect(c, waited->assigned, std::move(auth_props));
}

void Client::send_auth(uint8_t reason_code, std::string_view method, std::string data) {
  mqtt::Auth a;
  a.reason_code = reason_code;
  a.properties.authentication_method = std::string(method);
  a.properties.authentication_data = std::move(data);
  std::string bytes;
  mqtt::encode_auth(a, bytes);
  transport_.send(bytes);
  metrics::count_packet_out(PacketType::Auth);
}

// Section 4.12.1: a client that authenticated with a method may prove itself again at any time
// (AUTH 0x19, then the same exchange as at CONNECT); other packets keep flowing under the
// previous authentication meanwhile. A failure ends the connection with 0x87.
bool Client::handle_reauth(uint8_t flags, std::string_view body) {
  mqtt::Auth a;
  if (mqtt::Status st = mqtt::decode_auth(flags, body, version_, a); !st.ok()) {
    return fail(st.code, st.message);
  }
  if (auth_.method().empty()) {
    return fail(rc::ProtocolError, "AUTH without enhanced authentication");
  }
  if (a.properties.authentication_method != auth_.method()) {
    return fail(rc::ProtocolError, "AUTH must keep the CONNECT's authentication method");
  }
  const std::string data = a.properties.authentication_data.value_or("");
  Authenticator::Verdict verdict;
  if (a.reason_code == rc::ReAuthenticate) {
    if (auth_.exchanging()) return fail(rc::ProtocolError, "re-authentication already under way");
    verdict = auth_.start_reauthentication(data);
  } else if (a.reason_code == rc::ContinueAuthentication && auth_.exchanging()) {
    verdict = auth_.continue_reauthentication(data);
  } else {
    return fail(rc::ProtocolError, "AUTH outside a re-authentication");
  }
  switch (verdict.outcome) {
    case Authenticator::Outcome::Refused:
      return reauth_failed(verdict.reason);
    case Authenticator::Outcome::Continue:
      send_auth(rc::ContinueAuthentication, auth_.method(), std::move(verdict.data));
      return true;
    case Authenticator::Outcome::Pending:  // SCRAM only: never
    case Authenticator::Outcome::Accepted:
      break;
  }
  // Rules reloaded since the CONNECT apply from here.
  compile_acl();
  if (session_) session_->set_read_acl(readable_acl());
  send_auth(rc::Success, auth_.method(), std::move(verdict.data));
  return true;
}

bool Client::reauth_failed(const std::string& why) {
  spdlog::info("client '{}' ({}): re-authentication failed: {}", client_id(), transport_.peer(),
               why);
  disconnect(rc::NotAuthorized, "re-authentication failed");
  return false;
}

bool Client::finish_connect(mqtt::Connect& c, bool assigned, mqtt::Properties props) {
  const auto& mqtt_cfg = settings_->mqtt;

  // Keep-alive: lowered to our maximum (announced as Server Keep Alive on 5.0).
  keep_alive_ = c.keep_alive;
  if (version_ == Version::V5 && keep_alive_ > mqtt_cfg.max_keep_alive) {
    keep_alive_ = mqtt_cfg.max_keep_alive;
    props.server_keep_alive = keep_alive_;
  }

  // Session expiry: 3.1.1 clean session 0 means the session never expires.
  uint32_t expiry = 0;
  if (version_ == Version::V5) {
    expiry = c.properties.session_expiry_interval.value_or(0);
    if (expiry > mqtt_cfg.max_session_expiry) {
      expiry = mqtt_cfg.max_session_expiry;
      props.session_expiry_interval = expiry;
    }
  } else if (!c.clean_start) {
    expiry = 0xFFFFFFFF;
  }
  session_expiry_was_zero_ = expiry == 0;

  ClientCapabilities caps;
  caps.version = version_;
  if (version_ == Version::V5) {
    caps.receive_maximum = c.properties.receive_maximum.value_or(65535);
    caps.maximum_packet_size = c.properties.maximum_packet_size.value_or(0);
    caps.topic_alias_maximum = c.properties.topic_alias_maximum.value_or(0);
  }
  caps.read_acl = readable_acl();
  const DeliveryLimits limits = broker_.delivery_limits();

  // In a cluster the client id is claimed first, and the session may live on another node:
  // wait for the claim (and the session) before answering.
  if (!session_awaited_ && broker_.cluster()) {
    session_awaited_ = true;
    if (broker_.cluster()->await_session(*pending_client_id_, c.clean_start, expiry,
                                         transport_.attachment())) {
      waiting_connect_ = std::make_unique<WaitingConnect>(
          WaitingConnect{std::move(c), assigned, std::move(props), WaitKind::Cluster});
      transport_.pause_reading(true);
      return true;
    }
  }

  auto opened = broker_.open_session(*pending_client_id_, c.clean_start, expiry,
                                     transport_.attachment(), caps, limits);
  session_ = opened.session;
  pending_client_id_.reset();  // the session has it: one copy per client is enough
  session_->set_peer(transport_.peer_address());  // shown by the HTTP API
  if (opened.taken_over) {
    broker_.connections().kick(opened.taken_over, rc::SessionTakenOver);
  }
  will_ = c.will ? std::make_unique<mqtt::Will>(std::move(*c.will)) : nullptr;
  connected_ = true;
  last_packet_at_ = core::EventLoop::now();
  broker_.client_connected();
  if (Events::wanted(EventKind::ClientConnected)) emit_connected();

  if (version_ == Version::V5) {
    if (assigned) props.assigned_client_identifier = client_id();
    props.receive_maximum = receive_maximum_;
    props.maximum_packet_size = max_packet_size_;
    props.topic_alias_maximum = topic_alias_maximum_;
    if (mqtt_cfg.max_qos < 2) props.maximum_qos = mqtt_cfg.max_qos;
    props.retain_available = mqtt_cfg.retain_available ? 1 : 0;
    props.wildcard_subscription_available = mqtt_cfg.wildcard_subscriptions ? 1 : 0;
    props.subscription_identifier_available = mqtt_cfg.subscription_identifiers ? 1 : 0;
    props.shared_subscription_available = mqtt_cfg.shared_subscriptions ? 1 : 0;
    // Only when asked ([MQTT-3.1.2-28]) and only when we have something to say.
    if (c.properties.request_response_information.value_or(0) == 1 &&
        !mqtt_cfg.response_information.empty()) {
      props.response_information = mqtt_cfg.response_information;
    }
  }
  send_connack(opened.present, rc::Success, std::move(props));
  spdlog::debug("client '{}' connected from {} (v{}, clean {}, keepalive {})", client_id(),
                transport_.peer(), static_cast<int>(version_), c.clean_start, keep_alive_);
  session_->resume_delivery(core::EventLoop::now());
  return true;
}

void Client::cluster_wait_over() {
  if (closing_) return;
  if (held_suback_) {
    std::unique_ptr<HeldSuback> held = std::move(held_suback_);
    send_suback_and_retained(*held);
    transport_.pause_reading(false);
    return;
  }
  if (!waiting_connect_ || waiting_connect_->kind != WaitKind::Cluster) return;
  const std::unique_ptr<WaitingConnect> a = std::move(waiting_connect_);
  finish_connect(a->connect, a->assigned, std::move(a->properties));
  transport_.pause_reading(false);  // packets sent behind the CONNECT
}

// --- PUBLISH --------------------------------------------------------------------------------

bool Client::handle_publish(const mqtt::FrameHeader& header, std::string_view packet,
                            std::string_view body) {
  thread_local mqtt::Publish p;  // reused: the decoder clears it and keeps its capacity
  mqtt::Status st = mqtt::decode_publish(header.flags(), body, version_, p);
  if (!st.ok()) return fail(st.code, st.message);
  if (!rerunning()) metrics::add(metrics::Counter::MessagesReceived);

  // Topic aliases (5.0): an alias with a topic sets it, an alias alone uses it.
  bool used_alias = false;
  if (p.properties.topic_alias) {
    uint16_t alias = *p.properties.topic_alias;
    if (alias == 0 || alias > topic_alias_maximum_) {
      return fail(rc::TopicAliasInvalid, "topic alias out of range");
    }
    if (!inbound_aliases_) inbound_aliases_ = std::make_unique<std::vector<std::string>>();
    std::vector<std::string>& aliases = *inbound_aliases_;
    if (aliases.size() < alias) aliases.resize(topic_alias_maximum_);
    if (p.topic.empty()) {
      if (aliases[alias - 1].empty()) {
        return fail(rc::ProtocolError, "unknown topic alias");
      }
      p.topic = aliases[alias - 1];
    } else {
      aliases[alias - 1] = p.topic;  // checked with the publish: a bad one closes
    }
    used_alias = true;
  }

  // Authorization beyond the ACL file decides here, before anything of the packet is applied:
  // a packet that waits for the HTTP service runs again from the start with its answer.
  const auth::ClientAcl* acl = acl_.get();
  if (external_acl()) {
    switch (access(AclAction::Publish, p.topic, p.qos, p.retain)) {
      case Access::Ask:
        if (!rerunning()) return hold_for_acl(packet, 1);
        acl = decided_acl(false);  // answered once already: cannot be
        break;
      case Access::Allow:
        acl = decided_acl(true);
        break;
      case Access::Deny:
        acl = decided_acl(false);
        break;
    }
  }

  // Receive Maximum ([MQTT-3.3.4-9]): a QoS 1 or 2 PUBLISH beyond the QoS 1 and 2 messages we
  // have not answered with PUBACK or PUBCOMP yet. Only 5.0 clients know our Receive Maximum; a
  // 3.1.1 client's are bounded by pausing its reading (hold_ack) and the 65535 packet ids. DUP
  // does not exempt a packet id we do not hold: that is a new message, whatever its flag says.
  if (p.qos == 2 ? !session_->has_inbound_qos2(p.packet_id) : p.qos == 1) {
    if (version_ == Version::V5 && inbound_window_full()) {
      metrics::add(metrics::Counter::LimitReceiveMaximum);
      return fail(rc::ReceiveMaximumExceeded, "more QoS 1 and 2 messages in flight than allowed");
    }
  }
  // Exactly once: a retransmitted QoS 2 PUBLISH whose id awaits PUBREL is acknowledged again
  // but not routed again.
  if (p.qos == 2 && !session_->begin_inbound_qos2(p.packet_id)) {
    // Its PUBREC is still held for the Kafka bridge: that one answers.
    for (const HeldAck& held : held_acks_) {
      if (held.qos == 2 && held.packet_id == p.packet_id) return true;
    }
    mqtt::Ack rec;
    rec.type = PacketType::Pubrec;
    rec.packet_id = p.packet_id;
    std::string bytes;
    mqtt::encode_ack(rec, version_, bytes);
    reply(bytes);
    metrics::count_packet_out(PacketType::Pubrec);
    return true;
  }

  broker::Publication pub;
  pub.qos = p.qos;
  pub.retain = p.retain;
  if (version_ == Version::V5) {
    pub.properties = take_pass_through(p.properties);
    pub.expiry_interval = p.properties.message_expiry_interval;
  }
  // The incoming bytes are already the encoding for receivers of the same version and QoS
  // class: forwarded as they are. Not when an alias stands for the topic.
  if (!used_alias) {
    pub.wire_packet = packet;
    pub.wire_layout = mqtt::received_publish_layout(header, packet.size(), p.topic.size(), p.qos);
    pub.wire_v5 = version_ == Version::V5;
  }
  if (p.qos == 2 && session_->persistent()) pub.inbound_qos2_id = p.packet_id;
  pub.topic = std::move(p.topic);
  pub.payload = std::move(p.payload);
  const uint8_t qos = p.qos;
  const uint16_t packet_id = p.packet_id;

  Publisher from = publisher();
  from.acl = acl;
  PublishResult result = broker_.ingress().publish(std::move(pub), from, core::EventLoop::now());
  return answer_publish(qos, packet_id, result);
}

bool Client::answer_publish(uint8_t qos, uint16_t packet_id, PublishResult& result) {
  // A QoS 2 exchange that ends here without a PUBREC of success frees its packet id.
  if (qos == 2 && !taken(result.verdict)) forget_inbound_qos2(packet_id);
  switch (result.verdict) {
    case PublishVerdict::Delivered:
    case PublishVerdict::NoSubscribers:
      break;
    case PublishVerdict::QosNotSupported:
      return fail(rc::QosNotSupported, describe(result.verdict));
    case PublishVerdict::RetainNotSupported:
      return fail(rc::RetainNotSupported, describe(result.verdict));
    case PublishVerdict::InvalidTopic:
    case PublishVerdict::TopicOverLimits:
      return fail(rc::TopicNameInvalid, describe(result.verdict));
    case PublishVerdict::ReservedTopic:
    case PublishVerdict::NotAuthorized:
      if (qos == 0) return true;
      // 5.0 says why; 3.1.1 has no way to, so the message is acknowledged and dropped (the
      // spec's own choice, section 3.3.5).
      acknowledge_publish(qos, packet_id, version_ == Version::V5 ? rc::NotAuthorized : rc::Success,
                          0, nullptr);
      return true;
    case PublishVerdict::BridgeFull:
      // 3.1.1 has no way to say "not taken": leave it unacknowledged; the client sends it again
      // after reconnecting.
      if (qos > 0 && version_ != Version::V5) {
        return fail(rc::QuotaExceeded, describe(result.verdict));
      }
      break;
    case PublishVerdict::QueuesFull:
      // Every matching session refused it (full queue): said with 0x97, on 5.0 at least.
      break;
  }
  if (qos > 0) {
    uint8_t reason = rc::Success;
    if (result.verdict == PublishVerdict::NoSubscribers) reason = rc::NoMatchingSubscribers;
    if (!taken(result.verdict)) reason = rc::QuotaExceeded;
    acknowledge_publish(qos, packet_id, reason, result.ticket, std::move(result.gate));
  } else if (result.gate) {
    // QoS 0 has no acknowledgement, but a later one waits for its gate too (the cluster's
    // retained barrier: once a client has an ack, its earlier retained messages are everywhere).
    acknowledge_publish(0, 0, rc::Success, 0, std::move(result.gate));
  }
  if (result.congested) transport_.pause_reading(true);
  return true;
}

void Client::send_publish_ack(uint8_t qos, uint16_t packet_id, uint8_t reason_code,
                              uint64_t ticket) {
  mqtt::Ack ack;
  ack.type = qos == 1 ? PacketType::Puback : PacketType::Pubrec;
  ack.packet_id = packet_id;
  if (version_ == Version::V5) ack.reason_code = reason_code;
  std::string bytes;
  mqtt::encode_ack(ack, version_, bytes);
  reply(bytes, ticket);
  metrics::count_packet_out(ack.type);
}

void Client::acknowledge_publish(uint8_t qos, uint16_t packet_id, uint8_t reason_code,
                                 uint64_t ticket, std::shared_ptr<AckGate> gate) {
  if (!gate && held_acks_.empty()) {
    send_publish_ack(qos, packet_id, reason_code, ticket);
    return;
  }
  if (gate) {
    // The bridge settles the gate on its own thread; the wake-up brings us back here
    // (Connection::flush calls release_held_acks).
    gate->arm([link = transport_.attachment()](bool, const std::string&) {
      link.loop->wake(link.token);
    });
  }
  held_acks_.push_back(HeldAck{std::move(gate), packet_id, qos, reason_code, ticket});
  // Slow a 3.1.1 publisher down rather than hold without bound: it has no Receive Maximum to
  // stop it. A 5.0 one that goes past ours is disconnected with 0x93 (handle_publish).
  if (version_ != Version::V5 && !paused_for_held_acks_ && held_acks_.size() >= receive_maximum_) {
    paused_for_held_acks_ = true;
    transport_.pause_reading(true);
  }
  release_held_acks();
}

bool Client::inbound_window_full() {
  // QoS 2 ids wait for PUBREL (their PUBRECs may be held too: counted once); QoS 1 ones for
  // their held PUBACK. The sum with every held ack is an upper bound, usually enough.
  const size_t qos2 = session_->inbound_qos2_count();
  if (qos2 + held_acks_.size() < receive_maximum_) return false;
  const auto qos1 = std::count_if(held_acks_.begin(), held_acks_.end(),
                                  [](const HeldAck& h) { return h.qos == 1; });
  return qos2 + static_cast<size_t>(qos1) >= receive_maximum_;
}

void Client::forget_inbound_qos2(uint16_t packet_id) {
  if (!session_->release_inbound_qos2(packet_id) || !session_->persistent()) return;
  store::Batch batch;
  batch.del(store::inbound_key(client_id(), packet_id));
  broker_.store()->write_background(std::move(batch));
}

void Client::release_held_acks() {
  while (!held_acks_.empty() && !closing_) {
    HeldAck& held = held_acks_.front();
    if (held.gate && !held.gate->done()) break;
    if (held.qos == 0) {  // a QoS 0 publish's place in the order: nothing to send
      held_acks_.pop_front();
      continue;
    }
    uint8_t reason = held.reason_code;
    if (held.gate && !held.gate->error().empty()) {
      if (version_ != Version::V5) {
        // Not acknowledged: the client keeps the message and sends it again on reconnect.
        spdlog::warn(
            "client '{}': Kafka did not take message {}: {}; disconnecting (3.1.1 has "
            "no negative acknowledgement)",
            client_id(), held.packet_id, held.gate->error());
        if (held.qos == 2) forget_inbound_qos2(held.packet_id);
        held_acks_.clear();
        closing_ = true;
        transport_.close();
        return;
      }
      reason = rc::UnspecifiedError;
      if (held.qos == 2) forget_inbound_qos2(held.packet_id);
    }
    send_publish_ack(held.qos, held.packet_id, reason, held.ticket);
    held_acks_.pop_front();
  }
  if (paused_for_held_acks_ && held_acks_.size() * 2 < receive_maximum_) {
    paused_for_held_acks_ = false;
    // Posted, not now: this may run inside the connection's frame loop, which must not start
    // reading again under itself.
    broker_.connections().resume_reading(transport_.attachment());
  }
}

// --- Acknowledgements -----------------------------------------------------------------------

bool Client::handle_ack(PacketType type, uint8_t flags, std::string_view body) {
  mqtt::Ack ack;
  mqtt::Status st = mqtt::decode_ack(type, flags, body, version_, ack);
  if (!st.ok()) return fail(st.code, st.message);
  const Clock::time_point now = core::EventLoop::now();
  using AckResult = Session::AckResult;
  // An ack of the wrong type for a message in flight (PUBREC or PUBCOMP for QoS 1, PUBACK for
  // QoS 2, PUBCOMP before PUBREC) is a protocol violation: 5.0 DISCONNECT 0x82, 3.1.1 close
  // ([MQTT-4.8.0-1]). An ack for an id with nothing in flight is not: it may be a late
  // duplicate (PUBACK and PUBCOMP are ignored, PUBREC is answered per 4.3.3).
  switch (type) {
    case PacketType::Puback:
      if (session_->on_puback(ack.packet_id, now) == AckResult::WrongType) {
        return fail(rc::ProtocolError, "PUBACK for a QoS 2 message");
      }
      break;
    case PacketType::Pubrec:
      if (auto r = session_->on_pubrec(ack.packet_id, now, rc::is_failure(ack.reason_code));
          r == AckResult::WrongType) {
        return fail(rc::ProtocolError, "PUBREC for a QoS 1 message");
      } else if (r == AckResult::Unknown) {
        mqtt::Ack rel;
        rel.type = PacketType::Pubrel;
        rel.packet_id = ack.packet_id;
        rel.reason_code = rc::PacketIdentifierNotFound;
        std::string bytes;
        mqtt::encode_ack(rel, version_, bytes);
        reply(bytes);
        metrics::count_packet_out(PacketType::Pubrel);
      }
      break;
    case PacketType::Pubrel: {
      mqtt::Ack comp;
      comp.type = PacketType::Pubcomp;
      comp.packet_id = ack.packet_id;
      uint64_t ticket = 0;
      if (!session_->release_inbound_qos2(ack.packet_id)) {
        comp.reason_code = rc::PacketIdentifierNotFound;
      } else if (session_->persistent()) {
        // The id is free again only once that is durable: a new PUBLISH reusing it after a
        // crash must not be taken for a duplicate.
        store::Batch batch;
        batch.del(store::inbound_key(client_id(), ack.packet_id));
        ticket = broker_.store()->write(std::move(batch));
      }
      std::string bytes;
      mqtt::encode_ack(comp, version_, bytes);
      reply(bytes, ticket);
      metrics::count_packet_out(PacketType::Pubcomp);
      break;
    }
    case PacketType::Pubcomp:
      if (session_->on_pubcomp(ack.packet_id, now) == AckResult::WrongType) {
        return fail(rc::ProtocolError, "PUBCOMP for a message that was not released");
      }
      break;
    default:
      break;
  }
  return true;
}

// --- SUBSCRIBE / UNSUBSCRIBE ----------------------------------------------------------------

bool Client::handle_subscribe(uint8_t flags, std::string_view body, std::string_view packet) {
  const auto& mqtt_cfg = settings_->mqtt;
  mqtt::Subscribe sub;
  mqtt::Status st = mqtt::decode_subscribe(flags, body, version_, sub);
  if (!st.ok()) return fail(st.code, st.message);

  uint32_t sub_id = 0;
  if (!sub.properties.subscription_identifiers.empty()) {
    if (!mqtt_cfg.subscription_identifiers) {
      return fail(rc::SubscriptionIdentifiersNotSupported,
                  "subscription identifiers are not supported");
    }
    sub_id = sub.properties.subscription_identifiers.front();
  }

  mqtt::Suback ack;
  ack.packet_id = sub.packet_id;
  auto held = std::make_unique<HeldSuback>();
  std::vector<HeldSuback::Accepted>& accepted = held->accepted;
  uint64_t ticket = 0;                  // the SUBACK waits until the subscriptions are durable
  std::shared_ptr<AckGate> route_wait;  // and, in a cluster, until every node has the routes
  const uint32_t max_subs = settings_->limits.max_subscriptions_per_client;
  const uint8_t invalid_filter = mqtt::suback_failure(version_, rc::TopicFilterInvalid);
  for (const auto& req : sub.subscriptions) {
    if (!mqtt::valid_topic_filter(req.filter)) return malformed_filter();
  }
  // Authorization beyond the ACL file, for every filter before anything is applied. The filters
  // the HTTP service must answer for are asked at once; the SUBSCRIBE runs again when all
  // answers are in (then found in pending_acl_).
  std::vector<Access> decided;
  if (external_acl()) {
    uint32_t asks = 0;
    for (const auto& req : sub.subscriptions) {
      std::string_view group, rest;
      const bool shared = mqtt::split_shared_filter(req.filter, group, rest);
      Access a = access(AclAction::Subscribe, shared ? rest : std::string_view(req.filter), req.qos,
                        false);
      if (a == Access::Ask && rerunning()) a = Access::Deny;  // answered once already: cannot be
      if (a == Access::Ask) ++asks;
      decided.push_back(a);
    }
    if (asks > 0) return hold_for_acl(packet, asks);
  }
  for (size_t i = 0; i < sub.subscriptions.size(); ++i) {
    const auto& req = sub.subscriptions[i];
    std::string_view group, rest;
    const bool shared = mqtt::split_shared_filter(req.filter, group, rest);
    const std::string_view plain = shared ? rest : std::string_view(req.filter);
    if (shared && req.no_local) {
      return fail(rc::ProtocolError, "No Local on a shared subscription");
    }
    if (shared && !mqtt_cfg.shared_subscriptions) {
      ack.reason_codes.push_back(
          mqtt::suback_failure(version_, rc::SharedSubscriptionsNotSupported));
      continue;
    }
    if (!mqtt_cfg.wildcard_subscriptions && mqtt::has_wildcard(plain)) {
      ack.reason_codes.push_back(
          mqtt::suback_failure(version_, rc::WildcardSubscriptionsNotSupported));
      continue;
    }
    if (!settings_->limits.topic_within(plain)) {
      metrics::add(metrics::Counter::LimitTopic);
      ack.reason_codes.push_back(invalid_filter);
      continue;
    }
    const bool allowed =
        decided.empty() ? !acl_ || acl_->can_subscribe(plain) : decided[i] == Access::Allow;
    if (!allowed) {
      metrics::add(metrics::Counter::AclDeniedSubscribe);
      ack.reason_codes.push_back(mqtt::suback_failure(version_, rc::NotAuthorized));
      continue;
    }
    if (max_subs != 0 && session_->subscriptions().size() >= max_subs &&
        !session_->subscriptions().count(req.filter)) {
      metrics::add(metrics::Counter::LimitSubscriptions);
      ack.reason_codes.push_back(mqtt::suback_failure(version_, rc::QuotaExceeded));
      continue;
    }
    SubscriptionOptions options;
    options.qos = std::min(req.qos, mqtt_cfg.max_qos);
    // A 3.1.1 bridge (Mosquitto's bridge flag) gets what 5.0 bridges ask for: not its own
    // messages back, retained flags as published.
    options.no_local = req.no_local || (bridge_peer_ && !shared);
    options.retain_as_published = req.retain_as_published || bridge_peer_;
    options.retain_handling = req.retain_handling;
    options.subscription_id = sub_id;
    bool existed = broker_.subscribe(session_, req.filter, options, ticket, &route_wait);
    emit_subscription(EventKind::SessionSubscribed, req.filter, options.qos);
    accepted.push_back(HeldSuback::Accepted{req.filter, options, existed, shared});
    ack.reason_codes.push_back(options.qos);
  }
  mqtt::encode_suback(ack, version_, held->bytes);
  held->ticket = ticket;
  if (route_wait) {
    // A publish on another node right after the SUBACK must find the route there: answer once
    // every node that is up has read it, reading nothing else meanwhile.
    held_suback_ = std::move(held);
    transport_.pause_reading(true);
    route_wait->arm([control = &broker_.connections(), link = transport_.attachment()](
                        bool, const std::string&) { control->cluster_wait_over(link); });
    return true;
  }
  send_suback_and_retained(*held);
  return true;
}

void Client::send_suback_and_retained(HeldSuback& held) {
  reply(held.bytes, held.ticket);
  metrics::count_packet_out(PacketType::Suback);
  // Retained messages after the SUBACK (retain handling 0: always, 1: only for a new
  // subscription, 2: never; never for shared subscriptions, section 4.8.2).
  const Clock::time_point now = core::EventLoop::now();
  for (const auto& a : held.accepted) {
    if (a.shared || a.options.retain_handling == 2) continue;
    if (a.options.retain_handling == 1 && a.existed) continue;
    broker_.deliver_retained(session_, a.filter, a.options, now);
  }
}

// A topic filter that breaks the spec's rules (empty, '#' not last or not a whole level, '+'
// not a whole level, '$share/' without a share name or a filter after it) is a protocol
// violation, not a filter we refuse: [MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1],
// [MQTT-4.8.2-1], [MQTT-4.8.2-2]. 5.0: DISCONNECT 0x81 (Malformed Packet); 3.1.1: close
// ([MQTT-4.8.0-1]); both as Mosquitto does. Nothing of the packet is applied. A well-formed
// filter that is not allowed (over the limits, the ACL) gets its SUBACK code instead.
bool Client::malformed_filter() {
  return fail(rc::MalformedPacket, "malformed topic filter");
}

bool Client::handle_unsubscribe(uint8_t flags, std::string_view body) {
  mqtt::Unsubscribe unsub;
  mqtt::Status st = mqtt::decode_unsubscribe(flags, body, version_, unsub);
  if (!st.ok()) return fail(st.code, st.message);
  mqtt::Unsuback ack;
  ack.packet_id = unsub.packet_id;
  uint64_t ticket = 0;
  for (const auto& filter : unsub.filters) {
    if (!mqtt::valid_topic_filter(filter)) return malformed_filter();
  }
  for (const auto& filter : unsub.filters) {
    bool removed = broker_.unsubscribe(session_, filter, ticket);
    if (removed) emit_subscription(EventKind::SessionUnsubscribed, filter, 0);
    ack.reason_codes.push_back(removed ? rc::Success : rc::NoSubscriptionExisted);
  }
  std::string bytes;
  mqtt::encode_unsuback(ack, version_, bytes);
  reply(bytes, ticket);
  metrics::count_packet_out(PacketType::Unsuback);
  return true;
}

// --- DISCONNECT -----------------------------------------------------------------------------

bool Client::handle_disconnect(uint8_t flags, std::string_view body) {
  mqtt::Disconnect d;
  mqtt::Status st = mqtt::decode_disconnect(flags, body, version_, d);
  if (!st.ok()) return fail(st.code, st.message);
  if (d.properties.session_expiry_interval) {
    if (session_expiry_was_zero_ && *d.properties.session_expiry_interval != 0) {
      return fail(rc::ProtocolError, "session expiry set on DISCONNECT after 0 on CONNECT");
    }
    session_->set_expiry_interval(
        std::min(*d.properties.session_expiry_interval, settings_->mqtt.max_session_expiry));
  }
  // 0x04 keeps the will; every other normal DISCONNECT discards it.
  if (d.reason_code != rc::DisconnectWithWill) will_.reset();
  disconnect_reason_ = d.reason_code;
  closing_ = true;
  transport_.close();
  return false;
}

// --- Timers and the end -----------------------------------------------------------------------

void Client::on_tick(Clock::time_point now) {
  if (closing_) return;
  if (!connected_) {
    if (now - last_packet_at_ >= std::chrono::milliseconds(settings_->limits.connect_timeout_ms)) {
      spdlog::debug("connection from {}: no CONNECT in time", transport_.peer());
      metrics::add(metrics::Counter::LimitConnectTimeout);
      closing_ = true;
      transport_.close();
    }
    return;
  }
  if (const Grant* g = auth_.grant();
      g && g->expires_at && settings_->auth.jwt.disconnect_on_expiry &&
      std::chrono::system_clock::now() >=
          std::chrono::system_clock::time_point(std::chrono::seconds(*g->expires_at))) {
    // The token's authorization ended: 0xA0, "the maximum connection time authorized for this
    // connection has been exceeded" (docs/configuration.md, [auth.jwt]).
    metrics::add(metrics::Counter::JwtExpiredDisconnects);
    spdlog::info("client '{}' ({}): token expired: disconnected", client_id(), transport_.peer());
    disconnect(rc::MaximumConnectTime, "token expired");
    return;
  }
  if (keep_alive_ == 0) return;
  // One and a half times the keep-alive without a packet (section 3.1.2.10).
  if (now - last_packet_at_ >= std::chrono::milliseconds(keep_alive_ * 1500)) {
    metrics::add(metrics::Counter::KeepAliveTimeouts);
    disconnect(rc::KeepAliveTimeout, "keep alive timeout");
  }
}

void Client::emit_subscription(EventKind kind, const std::string& filter, uint8_t qos) {
  if (!Events::wanted(kind) || !Events::wants_topic(kind, filter)) return;
  Event e;
  e.kind = kind;
  e.client_id = client_id();
  e.username = auth_.username();
  e.topic = filter;
  e.qos = qos;
  Events::emit(std::move(e));
}

void Client::emit_connected() {
  Event e;
  e.kind = EventKind::ClientConnected;
  e.client_id = client_id();
  e.username = auth_.username();
  e.peerhost = transport_.peer_address().host();
  e.proto_ver = version_ == Version::V5 ? 5 : version_ == Version::V31 ? 3 : 4;
  e.keepalive = keep_alive_;
  e.clean_start = session_expiry_was_zero_;
  Events::emit(std::move(e));
}

void Client::emit_disconnected() {
  Event e;
  e.kind = EventKind::ClientDisconnected;
  e.client_id = client_id();
  e.username = auth_.username();
  e.peerhost = transport_.peer_address().host();
  switch (disconnect_reason_) {
    case rc::Success:
    case rc::DisconnectWithWill:
      e.reason = "normal";
      break;
    case rc::SessionTakenOver:
      e.reason = "takenover";
      break;
    case rc::AdministrativeAction:
      e.reason = "kicked";
      break;
    case rc::KeepAliveTimeout:
      e.reason = "keepalive_timeout";
      break;
    case rc::MaximumConnectTime:
      e.reason = "token_expired";
      break;
    case rc::ServerShuttingDown:
      e.reason = "server_shutdown";
      break;
    case 0xFF:
      e.reason = "closed";  // the connection ended without a DISCONNECT
      break;
    default:
      e.reason = "error";
  }
  if (disconnect_reason_ != 0xFF) e.reason_code = disconnect_reason_;
  Events::emit(std::move(e));
}

void Client::on_closed() {
  if (!connected_) return;
  connected_ = false;
  broker_.client_disconnected();
  if (Events::wanted(EventKind::ClientDisconnected)) emit_disconnected();
  const Clock::time_point now = core::EventLoop::now();
  const Attachment link = transport_.attachment();
  // Taken over: the session lives on with another connection, which cancels a delayed will.
  const bool taken_over = !session_->attached_to(link);
  if (will_) {
    uint32_t delay = will_->properties.will_delay_interval.value_or(0);
    uint32_t expiry = session_->expiry_interval();
    if (delay == 0 || expiry == 0) {
      broker_.publish_will(*will_, std::string(client_id()), now);
    } else if (!taken_over) {
      // Sent when the delay or the session ends, whichever is first; a reconnect cancels it.
      broker_.schedule_will(*will_, std::string(client_id()),
                            now + std::chrono::seconds(std::min(delay, expiry)));
    }
    will_.reset();
  }
  broker_.close_session(session_, link, now);
  metrics::add(metrics::Counter::ConnectionsClosed);
}

}  // namespace starling::broker
