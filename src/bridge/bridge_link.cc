#include "bridge/bridge_link.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "core/socket_io.h"
#include "metrics/counters.h"

namespace starling::bridge {

namespace {

using mqtt::PacketType;
using mqtt::Version;
namespace rc = mqtt::reason;

// Session output is taken only while less than this waits for a slow remote.
constexpr size_t kMaxUnwritten = 1 << 20;

std::string reason_text(uint8_t code) {
  switch (code) {
    case rc::UnsupportedProtocolVersion:
      return "unsupported protocol version";
    case rc::ClientIdentifierNotValid:
      return "client identifier not valid";
    case rc::BadUserNameOrPassword:
      return "bad user name or password";
    case rc::NotAuthorized:
      return "not authorized";
    case rc::ServerUnavailable:
      return "server unavailable";
    case rc::ServerShuttingDown:
      return "server shutting down";
    case rc::SessionTakenOver:
      return "session taken over";
    default:
      break;
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", code);
  return buf;
}

std::string default_client_id(const std::string& name) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "starling");
  return std::string(host) + "." + name;
}

// Cuts whole packets off the front of buf and hands each to each(header, packet); stops when
// each returns false. Returns false on a broken frame.
template <typename Each>
bool cut_frames(std::string& buf, uint32_t max_size, Each each) {
  size_t pos = 0;
  bool ok = true;
  while (pos < buf.size()) {
    mqtt::FrameHeader h;
    const std::string_view rest(buf.data() + pos, buf.size() - pos);
    const mqtt::FrameStatus st = mqtt::read_frame_header(rest, max_size, h);
    if (st == mqtt::FrameStatus::Incomplete) break;
    if (st != mqtt::FrameStatus::Ready) {
      ok = false;
      break;
    }
    if (rest.size() < h.total_size()) break;
    const std::string_view packet = rest.substr(0, h.total_size());
    pos += h.total_size();
    if (!each(h, packet)) {
      pos = buf.size();
      break;
    }
  }
  buf.erase(0, pos);
  return ok;
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

BridgeLink::BridgeLink(config::BridgeSettings settings, broker::Broker& broker, net::Worker& worker,
                       uint64_t token)
    : settings_(std::move(settings)),
      broker_(broker),
      worker_(worker),
      token_(token),
      map_(settings_.topics),
      remote_version_(settings_.protocol == "3.1.1" ? Version::V311 : Version::V5),
      listener_name_("bridge:" + settings_.name),
      use_bridge_flag_(settings_.try_private) {
  if (settings_.tls) {
    net::TlsClientSettings tls;
    tls.ca_file = settings_.tls_ca;
    tls.cert_file = settings_.tls_cert;
    tls.key_file = settings_.tls_key;
    tls.verify = settings_.tls_verify;
    tls_context_ = net::TlsContext::create_client(tls);  // throws naming the file
  }
  const auto& a = settings_.addresses.front();
  remote_name_ = a.host + ":" + std::to_string(a.port);
}

BridgeLink::~BridgeLink() {
  *alive_ = false;
}

broker::Attachment BridgeLink::attachment() const {
  return broker::Attachment{&worker_.loop(), token_};
}

std::optional<std::string> BridgeLink::certificate_username() const {
  // The bridge's identity is proven by the configuration: [[bridges]] local_username.
  return settings_.local_username;
}

void BridgeLink::start() {
  worker_.add_endpoint(token_, this);
  std::weak_ptr<bool> alive = alive_;
  worker_.loop().every(std::chrono::milliseconds(250), [this, alive] {
    if (auto a = alive.lock(); a && *a) tick();
  });
  // The session and its subscriptions exist from the first start on, so that what is
  // published while the remote is away waits for it. (A session restored from the store has
  // them already; rules changed since are applied when the remote is up.)
  if (!broker_.has_session(settings_.local_client_id())) {
    open_local();
    close_local();
  }
  connect_next();
}

void BridgeLink::stop() {
  if (state_ == State::Up && fd_ >= 0) {
    mqtt::Disconnect d;
    std::string bytes;
    mqtt::encode_disconnect(d, remote_version_, bytes);
    write_remote(bytes);
  }
  close_local();
  drop_connection();
  worker_.remove_endpoint(token_);
  *alive_ = false;
}

void BridgeLink::set_state(State s) {
  std::lock_guard lock(mutex_);
  state_ = s;
  if (s == State::Up) {
    connected_since_ms_ = unix_ms();
  } else if (s != State::Subscribing) {
    connected_since_ms_ = 0;
  }
}

broker::MqttBridgeInfo BridgeLink::info() const {
  broker::MqttBridgeInfo i;
  i.name = settings_.name;
  i.protocol = settings_.protocol;
  i.tls = settings_.tls;
  {
    std::lock_guard lock(mutex_);
    switch (state_) {
      case State::Backoff:
        i.state = "backoff";
        break;
      case State::Up:
        i.state = "connected";
        break;
      default:
        i.state = "connecting";
        break;
    }
    i.remote = remote_name_;
    i.last_error = last_error_;
    i.connected_since_ms = connected_since_ms_;
    i.failures_by_reason.assign(failures_by_reason_.begin(), failures_by_reason_.end());
  }
  // The session, connected or not (restored from the store before the first connection).
  if (std::optional<broker::SessionInfo> session = broker_.client(settings_.local_client_id())) {
    i.queued = session->queued;
    i.inflight = session->inflight;
  }
  i.sent = sent_.load(std::memory_order_relaxed);
  i.received = received_.load(std::memory_order_relaxed);
  i.connects = connects_.load(std::memory_order_relaxed);
  i.connect_failures = connect_failures_.load(std::memory_order_relaxed);
  i.unmatched = unmatched_.load(std::memory_order_relaxed);
  return i;
}

std::chrono::milliseconds BridgeLink::next_backoff() {
  uint64_t delay = settings_.reconnect_min_ms;
  for (unsigned i = 0; i < failures_ && delay < settings_.reconnect_max_ms; ++i)
    delay *= 2;
  delay = std::min<uint64_t>(delay, settings_.reconnect_max_ms);
  // +-20%, so that many bridges to one remote do not come back in step.
  thread_local std::minstd_rand random{std::random_device{}()};
  const uint64_t spread = delay / 5;
  if (spread > 0) delay = delay - spread + random() % (2 * spread + 1);
  return std::chrono::milliseconds(delay);
}

// --- The remote connection ------------------------------------------------------------------

void BridgeLink::connect_next() {
  const config::BridgeAddress& a = settings_.addresses[address_index_];
  {
    std::lock_guard lock(mutex_);
    remote_name_ = a.host.find(':') != std::string::npos
                       ? "[" + a.host + "]:" + std::to_string(a.port)
                       : a.host + ":" + std::to_string(a.port);
  }
  set_state(State::Connecting);
  deadline_ = Clock::now() + std::chrono::milliseconds(settings_.connect_timeout_ms);
  // Names are resolved here, on the loop: bridges are few and connect rarely, and the
  // connect timeout bounds it (an address is the usual case and resolves at once).
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  if (const int err = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found); err != 0) {
    fail("cannot resolve " + a.host + ": " + gai_strerror(err), "resolve");
    return;
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    fail(std::string("socket: ") + std::strerror(errno), "connect");
    return;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
  const int err = errno;
  freeaddrinfo(found);
  if (rc != 0 && err != EINPROGRESS) {
    ::close(fd);
    fail("connect to " + remote_name_ + ": " + std::strerror(err), "connect");
    return;
  }
  fd_ = fd;
  want_write_ = true;
  worker_.loop().add(fd_, EPOLLIN | EPOLLOUT | EPOLLRDHUP, this);
}

void BridgeLink::connected_tcp() {
  last_received_ = last_sent_ = Clock::now();
  if (tls_context_) {
    const config::BridgeAddress& a = settings_.addresses[address_index_];
    tls_ = std::make_unique<net::TlsLayer>(
        tls_context_, settings_.tls_server_name.empty() ? a.host : settings_.tls_server_name);
    std::string up;
    if (!tls_->on_input({}, up, wbuf_)) {  // the ClientHello
      fail(tls_->error(), "tls");
      return;
    }
  }
  set_state(State::AwaitConnack);
  send_connect();  // behind the TLS handshake, when there is one
}

void BridgeLink::send_connect() {
  mqtt::Connect c;
  c.version = remote_version_;
  c.clean_start = settings_.clean_start;
  c.keep_alive = settings_.keep_alive;
  c.client_id =
      settings_.client_id.empty() ? default_client_id(settings_.name) : settings_.client_id;
  if (!settings_.username.empty()) c.username = settings_.username;
  if (!settings_.password.empty()) c.password = settings_.password;
  c.bridge = remote_version_ != Version::V5 && use_bridge_flag_;
  if (remote_version_ == Version::V5) {
    const auto settings = broker_.settings();
    if (settings_.session_expiry > 0)
      c.properties.session_expiry_interval = settings_.session_expiry;
    c.properties.receive_maximum = settings->mqtt.receive_maximum;
    if (settings->mqtt.max_packet_size > 0) {
      c.properties.maximum_packet_size = settings->mqtt.max_packet_size;
    }
  }
  std::string bytes;
  mqtt::encode_connect(c, bytes);
  write_remote(bytes);
}

void BridgeLink::on_io(uint32_t events) {
  if (fd_ < 0) return;
  if (state_ == State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
      fail("connect to " + remote_name_ + ": " + std::strerror(err != 0 ? err : ECONNREFUSED),
           "connect");
      return;
    }
    if (!(events & EPOLLOUT)) return;
    connected_tcp();
    if (fd_ < 0) return;
  }
  if (events & EPOLLOUT) {
    const bool backlogged = wbuf_.size() - wpos_ >= kMaxUnwritten;
    write_some();
    if (fd_ >= 0 && backlogged && wbuf_.size() - wpos_ < kMaxUnwritten) flush();
  }
  if (fd_ >= 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) read_some();
}

void BridgeLink::read_some() {
  char buf[64 * 1024];
  for (int round = 0; round < 16 && fd_ >= 0 && !reading_paused_; ++round) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      metrics::add(metrics::Counter::BytesReceived, static_cast<uint64_t>(n));
      std::string_view bytes(buf, static_cast<size_t>(n));
      if (tls_) {
        std::string up;
        std::string down;
        const bool ok = tls_->on_input(bytes, up, down);
        if (!down.empty()) {
          wbuf_.append(down);
          write_some();
        }
        if (!ok) {
          fail(tls_ ? tls_->error() : "TLS failed", "tls");
          return;
        }
        if (!up.empty()) on_remote_bytes(up);
      } else {
        on_remote_bytes(bytes);
      }
      if (static_cast<size_t>(n) < sizeof buf) return;
      continue;
    }
    if (n == 0) {
      fail("connection closed by the remote", "closed");
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    if (errno == EINTR) continue;
    fail(std::string("read: ") + std::strerror(errno), "closed");
    return;
  }
}

void BridgeLink::on_remote_bytes(std::string_view bytes) {
  last_received_ = Clock::now();
  rbuf_.append(bytes);
  const uint32_t max = broker_.settings()->mqtt.max_packet_size;
  const int fd = fd_;
  const bool ok = cut_frames(rbuf_, max, [&](const mqtt::FrameHeader& h, std::string_view p) {
    return on_remote_packet(h, p) && fd_ == fd;
  });
  if (!ok && fd_ == fd) {
    fail("a packet from the remote is malformed or too large", "protocol");
    return;
  }
  // What the packets made the session write without a wake-up (PUBREL after PUBREC, acks),
  // as a connection flushes after its input.
  if (fd_ == fd) flush();
}

bool BridgeLink::on_remote_packet(const mqtt::FrameHeader& header, std::string_view packet) {
  const std::string_view body = packet.substr(header.header_size);
  ping_outstanding_ = false;
  if (state_ == State::AwaitConnack) {
    if (header.type() != PacketType::Connack) {
      fail("the remote sent something before its CONNACK", "protocol");
      return false;
    }
    return on_connack(body, header.flags());
  }
  switch (header.type()) {
    case PacketType::Publish:
      return remote_publish(header, body);
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp:
      return remote_ack(header.type(), header.flags(), body);
    case PacketType::Suback: {
      mqtt::Suback ack;
      if (!mqtt::decode_suback(header.flags(), body, remote_version_, ack).ok()) {
        fail("malformed SUBACK from the remote", "protocol");
        return false;
      }
      if (ack.packet_id != subscribe_id_ || state_ != State::Subscribing) return true;
      note_refusals(ack, map_.remote_subscriptions(), "the remote", spdlog::level::warn);
      remote_up();
      return true;
    }
    case PacketType::Unsuback:
    case PacketType::Pingresp:
      return true;
    case PacketType::Disconnect: {
      mqtt::Disconnect d;
      if (remote_version_ == Version::V5) {
        mqtt::decode_disconnect(header.flags(), body, remote_version_, d);
      }
      fail("the remote disconnected: " + reason_text(d.reason_code) +
               (d.properties.reason_string ? " (" + *d.properties.reason_string + ")" : ""),
           "closed");
      return false;
    }
    default:
      fail("the remote sent a packet a server does not send", "protocol");
      return false;
  }
}

bool BridgeLink::on_connack(std::string_view body, uint8_t flags) {
  mqtt::Connack ack;
  if (!mqtt::decode_connack(flags, body, remote_version_, ack).ok()) {
    fail("malformed CONNACK from the remote", "protocol");
    return false;
  }
  if (rc::is_failure(ack.reason_code)) {
    if (ack.reason_code == rc::UnsupportedProtocolVersion && remote_version_ != Version::V5 &&
        use_bridge_flag_) {
      // Not a Mosquitto-like broker: as Mosquitto does, try again without the bridge flag.
      use_bridge_flag_ = false;
      spdlog::info("bridge {}: {} does not take the bridge flag; connecting without it",
                   settings_.name, remote_name_);
      close_local();
      drop_connection();
      set_state(State::Backoff);
      deadline_ = Clock::now();  // again at the next tick
      return false;
    }
    std::string why = "the remote refused the connection: " + reason_text(ack.reason_code);
    if (ack.properties.reason_string) why += " (" + *ack.properties.reason_string + ")";
    fail(std::move(why), "refused");
    return false;
  }
  remote_receive_max_ = ack.properties.receive_maximum.value_or(65535);
  remote_max_packet_ = ack.properties.maximum_packet_size.value_or(0);
  failures_ = 0;
  attempts_in_round_ = 0;
  connects_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("bridge {}: connected to {} (MQTT {}{}{})", settings_.name, remote_name_,
               settings_.protocol, tls_ ? ", TLS" : "",
               ack.session_present ? ", session present" : "");
  set_state(State::Subscribing);
  open_local();
  if (!local_ || fd_ < 0) return false;
  subscribe_remote();
  return fd_ >= 0;
}

void BridgeLink::subscribe_remote() {
  const auto& subs = map_.remote_subscriptions();
  if (subs.empty()) {
    remote_up();
    return;
  }
  mqtt::Subscribe s;
  // Sent before the session's output flows on this connection. (A QoS 2 exchange the remote
  // still holds from the last connection could use the same id until its PUBREL, which
  // follows the SUBACK; brokers keep the two apart, but the spec asks for an unused id.)
  s.packet_id = subscribe_id_ = 1;
  for (const Subscription& sub : subs) {
    mqtt::SubscriptionRequest r;
    r.filter = sub.filter;
    r.qos = sub.qos;
    r.no_local = true;             // our own messages do not come back
    r.retain_as_published = true;  // retained flags travel as published
    r.retain_handling = 1;         // retained messages only for a new subscription
    s.subscriptions.push_back(std::move(r));
  }
  std::string bytes;
  mqtt::encode_subscribe(s, remote_version_, bytes);
  write_remote(bytes);
}

void BridgeLink::note_refusals(const mqtt::Suback& ack, const std::vector<Subscription>& subs,
                               const char* who, spdlog::level::level_enum level) {
  for (size_t i = 0; i < ack.reason_codes.size() && i < subs.size(); ++i) {
    if (ack.reason_codes[i] < 0x80) continue;
    const std::string why = std::string(who) + " refused the subscription to " + subs[i].filter +
                            " (" + reason_text(ack.reason_codes[i]) + ")";
    spdlog::log(level, "bridge {}: {}", settings_.name, why);
    std::lock_guard lock(mutex_);
    last_error_ = why;
  }
}

void BridgeLink::remote_up() {
  set_state(State::Up);
  {
    std::lock_guard lock(mutex_);
    last_error_.clear();
  }
  flush();
}

bool BridgeLink::remote_publish(const mqtt::FrameHeader& header, std::string_view body) {
  thread_local mqtt::Publish p;
  if (const mqtt::Status st = mqtt::decode_publish(header.flags(), body, remote_version_, p);
      !st.ok()) {
    fail(std::string("malformed PUBLISH from the remote: ") + st.message, "protocol");
    return false;
  }
  received_.fetch_add(1, std::memory_order_relaxed);
  std::optional<std::string> local_topic = map_.to_local(p.topic);
  if (!local_topic || !local_) {
    // A subscription of a rule removed since (the remote session keeps it): acknowledged and
    // left out.
    unmatched_.fetch_add(1, std::memory_order_relaxed);
    if (p.qos > 0) {
      mqtt::Ack ack;
      ack.type = p.qos == 1 ? PacketType::Puback : PacketType::Pubrec;
      ack.packet_id = p.packet_id;
      std::string bytes;
      mqtt::encode_ack(ack, remote_version_, bytes);
      write_remote(bytes);
    }
    return fd_ >= 0;
  }
  p.topic = std::move(*local_topic);
  p.properties.topic_alias.reset();
  std::string bytes;
  mqtt::encode_publish(p, Version::V5, bytes);
  mqtt::FrameHeader h;
  mqtt::read_frame_header(bytes, 0, h);
  return local_->on_packet(h, bytes) && fd_ >= 0;
}

bool BridgeLink::remote_ack(PacketType type, uint8_t flags, std::string_view body) {
  mqtt::Ack ack;
  if (!mqtt::decode_ack(type, flags, body, remote_version_, ack).ok()) {
    fail("malformed acknowledgement from the remote", "protocol");
    return false;
  }
  if (!local_) return true;
  std::string bytes;
  mqtt::encode_ack(ack, Version::V5, bytes);
  mqtt::FrameHeader h;
  mqtt::read_frame_header(bytes, 0, h);
  return local_->on_packet(h, bytes) && fd_ >= 0;
}

void BridgeLink::write_remote(std::string_view plaintext) {
  if (fd_ < 0) return;
  last_sent_ = Clock::now();
  if (tls_) {
    if (!tls_->on_output(plaintext, wbuf_)) {
      fail(tls_->error(), "tls");
      return;
    }
  } else {
    wbuf_.append(plaintext);
  }
  write_some();
}

void BridgeLink::write_some() {
  if (fd_ < 0 || state_ == State::Connecting) return;
  const size_t before = wpos_;
  const core::SendResult result = core::send_pending(fd_, wbuf_, wpos_);
  if (wpos_ != before) metrics::add(metrics::Counter::BytesSent, wpos_ - before);
  if (result == core::SendResult::Failed) {
    fail("connection lost while writing", "closed");
    return;
  }
  if (wpos_ == wbuf_.size()) {
    wbuf_.clear();
    wpos_ = 0;
  } else if (wpos_ > (1 << 16) && wpos_ * 2 > wbuf_.size()) {
    wbuf_.erase(0, wpos_);
    wpos_ = 0;
  }
  const bool want = wpos_ < wbuf_.size();
  if (want != want_write_) {
    want_write_ = want;
    update_interest();
  }
}

void BridgeLink::update_interest() {
  if (fd_ < 0) return;
  uint32_t events = EPOLLRDHUP;
  if (!reading_paused_) events |= EPOLLIN;
  if (want_write_ || state_ == State::Connecting) events |= EPOLLOUT;
  worker_.loop().modify(fd_, events, this);
}

void BridgeLink::pause_reading(bool paused) {
  if (reading_paused_ == paused) return;
  reading_paused_ = paused;
  update_interest();
  if (!paused && fd_ >= 0) read_some();
}

void BridgeLink::drop_connection() {
  if (fd_ >= 0) {
    worker_.loop().remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  tls_.reset();
  rbuf_.clear();
  wbuf_.clear();
  wpos_ = 0;
  want_write_ = false;
  reading_paused_ = false;
  ping_outstanding_ = false;
}

void BridgeLink::fail(std::string why, const char* reason) {
  const bool was_up = state_ == State::Up;
  spdlog::warn("bridge {}: {}: {}", settings_.name, remote_name_, why);
  {
    std::lock_guard lock(mutex_);
    last_error_ = std::move(why);
    if (!was_up) failures_by_reason_[reason] += 1;
  }
  if (!was_up) connect_failures_.fetch_add(1, std::memory_order_relaxed);
  close_local();
  drop_connection();
  // The next address at once; after the whole list, wait (doubling) before trying again.
  address_index_ = (address_index_ + 1) % settings_.addresses.size();
  std::chrono::milliseconds wait{0};
  if (was_up) {
    wait = std::chrono::milliseconds(settings_.reconnect_min_ms);
    attempts_in_round_ = 0;
  } else if (++attempts_in_round_ >= settings_.addresses.size()) {
    attempts_in_round_ = 0;
    wait = next_backoff();
    ++failures_;
  }
  set_state(State::Backoff);
  deadline_ = Clock::now() + wait;
}

void BridgeLink::tick() {
  const Clock::time_point now = Clock::now();
  if (local_) local_->on_tick(now);
  switch (state_) {
    case State::Backoff:
      if (now >= deadline_) connect_next();
      return;
    case State::Connecting:
    case State::AwaitConnack:
    case State::Subscribing:
      if (now >= deadline_) {
        fail("no answer within " + std::to_string(settings_.connect_timeout_ms) + " ms", "timeout");
      }
      return;
    case State::Up:
      break;
  }
  if (settings_.keep_alive == 0) return;
  const auto keep_alive = std::chrono::seconds(settings_.keep_alive);
  if (now - last_received_ >= keep_alive * 3 / 2) {
    fail("keep alive: no answer from the remote", "timeout");
    return;
  }
  // A PINGREQ also when only our side talks (QoS 0 out, nothing back), or the check above
  // would drop a healthy connection.
  if (!ping_outstanding_ &&
      (now - last_sent_ >= keep_alive || now - last_received_ >= keep_alive)) {
    std::string bytes;
    mqtt::encode_pingreq(bytes);
    ping_outstanding_ = true;
    write_remote(bytes);
  }
}

// --- The local side -------------------------------------------------------------------------

void BridgeLink::open_local() {
  local_ = std::make_unique<broker::Client>(broker_, *this);
  local_buf_.clear();
  mqtt::Connect c;
  c.version = Version::V5;
  c.clean_start = false;
  c.client_id = settings_.local_client_id();
  c.properties.session_expiry_interval = 0xFFFFFFFF;  // the queue lives as long as the bridge
  c.properties.receive_maximum = remote_receive_max_;
  if (remote_max_packet_ > 0) c.properties.maximum_packet_size = remote_max_packet_;
  std::string bytes;
  mqtt::encode_connect(c, bytes);
  mqtt::FrameHeader h;
  mqtt::read_frame_header(bytes, 0, h);
  if (!local_->on_packet(h, bytes) || !local_ || !local_->connected()) {
    // Refused (the CONNACK said why, see local_packet), or waiting for a cluster: not made.
    return;
  }
  const broker::SessionPtr& session = local_->session();
  broker::DeliveryLimits limits = broker_.delivery_limits();
  if (settings_.max_queued_messages > 0) limits.max_queued_messages = settings_.max_queued_messages;
  if (settings_.max_queued_bytes > 0) limits.max_queued_bytes = settings_.max_queued_bytes;
  session->set_limits(limits);

  // The out rules' subscriptions, and away with those of rules removed since.
  mqtt::Subscribe s;
  s.packet_id = 1;
  for (const Subscription& sub : map_.local_subscriptions()) {
    mqtt::SubscriptionRequest r;
    r.filter = sub.filter;
    r.qos = sub.qos;
    r.no_local = true;             // what came in over this bridge does not go back
    r.retain_as_published = true;  // retained flags travel as published
    r.retain_handling = 1;         // retained messages once, when the rule is new
    s.subscriptions.push_back(std::move(r));
  }
  mqtt::Unsubscribe u;
  u.packet_id = 2;
  for (const auto& [filter, options] : session->subscriptions()) {
    const auto& wanted = map_.local_subscriptions();
    if (std::none_of(wanted.begin(), wanted.end(),
                     [&](const Subscription& w) { return w.filter == filter; })) {
      u.filters.push_back(filter);
    }
  }
  bytes.clear();
  if (!s.subscriptions.empty()) mqtt::encode_subscribe(s, Version::V5, bytes);
  if (!u.filters.empty()) mqtt::encode_unsubscribe(u, Version::V5, bytes);
  mqtt::FrameHeader sh;
  size_t pos = 0;
  while (local_ && pos < bytes.size()) {
    const std::string_view rest(bytes.data() + pos, bytes.size() - pos);
    mqtt::read_frame_header(rest, 0, sh);
    if (!local_->on_packet(sh, rest.substr(0, sh.total_size()))) break;
    pos += sh.total_size();
  }
}

void BridgeLink::close_local() {
  if (!local_) return;
  std::unique_ptr<broker::Client> client = std::move(local_);
  client->on_closed();  // the session stays (it never expires), offline, queueing
  // It may be on the call stack (a failure found while it was sending): it goes at the end
  // of this loop iteration.
  auto retired = std::make_shared<std::unique_ptr<broker::Client>>(std::move(client));
  worker_.loop().defer([retired] { retired->reset(); });
  local_buf_.clear();
  ++local_generation_;
}

void BridgeLink::flush() {
  if (!local_) return;
  local_->release_held_acks();
  if (!local_ || !local_->connected()) return;
  // Nothing goes to the remote before it is up.
  if (state_ != State::Up) return;
  if (fd_ >= 0 && wbuf_.size() - wpos_ >= kMaxUnwritten) return;  // on_io comes back here
  std::string out;
  const broker::SessionPtr session = local_->session();
  if (session->take_output(out)) {
    session->refill(core::EventLoop::now());
    session->take_output(out);
  }
  if (!out.empty()) from_local(out);
}

void BridgeLink::send(std::string_view bytes) {
  from_local(bytes);
}

void BridgeLink::close() {
  // The local Client ends (a protocol error in what the remote sent, or the session taken):
  // the remote connection goes too, and comes back after the backoff. Not now: the Client
  // is on the call stack.
  std::weak_ptr<bool> alive = alive_;
  worker_.loop().defer([this, alive] {
    auto a = alive.lock();
    if (!a || !*a || !local_) return;
    fail("the local session ended the connection", "local");
  });
}

void BridgeLink::from_local(std::string_view bytes) {
  local_buf_.append(bytes);
  if (in_from_local_) return;  // the outer call goes on with it
  in_from_local_ = true;
  const uint64_t generation = local_generation_;
  cut_frames(local_buf_, 0, [&](const mqtt::FrameHeader& h, std::string_view packet) {
    local_packet(h, packet);
    return generation == local_generation_;  // the local side closed meanwhile
  });
  in_from_local_ = false;
}

void BridgeLink::local_packet(const mqtt::FrameHeader& header, std::string_view packet) {
  const std::string_view body = packet.substr(header.header_size);
  switch (header.type()) {
    case PacketType::Connack: {
      mqtt::Connack ack;
      mqtt::decode_connack(header.flags(), body, Version::V5, ack);
      if (rc::is_failure(ack.reason_code)) {
        const std::string why =
            "this broker refused the bridge's session: " + reason_text(ack.reason_code);
        spdlog::error("bridge {}: {}", settings_.name, why);
        std::lock_guard lock(mutex_);
        last_error_ = why;
      }
      return;
    }
    case PacketType::Suback: {
      mqtt::Suback ack;
      mqtt::decode_suback(header.flags(), body, Version::V5, ack);
      note_refusals(ack, map_.local_subscriptions(), "this broker", spdlog::level::err);
      return;
    }
    case PacketType::Publish: {
      if (state_ != State::Up) return;  // in flight: sent again with DUP next time
      thread_local mqtt::Publish p;
      if (!mqtt::decode_publish(header.flags(), body, Version::V5, p).ok()) return;
      std::optional<std::string> remote_topic = map_.to_remote(p.topic);
      if (!remote_topic) {
        // A subscription of a removed out rule, delivered before it went: completed here.
        unmatched_.fetch_add(1, std::memory_order_relaxed);
        if (p.qos > 0 && local_) {
          mqtt::Ack ack;
          ack.type = p.qos == 1 ? PacketType::Puback : PacketType::Pubrec;
          ack.packet_id = p.packet_id;
          std::string bytes;
          mqtt::encode_ack(ack, Version::V5, bytes);
          mqtt::FrameHeader h;
          mqtt::read_frame_header(bytes, 0, h);
          local_->on_packet(h, bytes);
        }
        return;
      }
      p.topic = std::move(*remote_topic);
      std::string bytes;
      mqtt::encode_publish(p, remote_version_, bytes);
      sent_.fetch_add(1, std::memory_order_relaxed);
      write_remote(bytes);
      return;
    }
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp: {
      if (state_ != State::Up && state_ != State::Subscribing) return;
      mqtt::Ack ack;
      if (!mqtt::decode_ack(header.type(), header.flags(), body, Version::V5, ack).ok()) return;
      std::string bytes;
      mqtt::encode_ack(ack, remote_version_, bytes);
      write_remote(bytes);
      return;
    }
    default:
      return;  // PINGRESP, DISCONNECT (close() follows), AUTH
  }
}

}  // namespace starling::bridge
