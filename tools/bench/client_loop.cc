#include "client_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>

#include "mqtt/codec.h"
#include "proc_sampler.h"

namespace starling::bench {

namespace {

constexpr size_t kInitialRead = 4096;
// A subscriber under load reads this much per recv(); bigger buys nothing but cache misses.
constexpr size_t kMaxReadChunk = 256 * 1024;
// Past this much already-written output at the front of the buffer, compact.
constexpr size_t kCompactOutput = 64 * 1024;
constexpr uint64_t kNsPerSec = 1'000'000'000;
// While waiting for the runner to start, or with nothing scheduled, wake this often anyway to
// notice stop requests.
constexpr uint64_t kIdleWakeNs = 100'000'000;
constexpr uint64_t kSetupPollNs = 2'000'000;
constexpr uint64_t kHousekeepingNs = kNsPerSec;

std::string errno_text(int err) {
  return std::strerror(err);
}

double timeval_s(const timeval& tv) {
  return tv.tv_sec + tv.tv_usec / 1e6;
}

std::string hex2(uint8_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", v);
  return buf;
}

}  // namespace

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::Setup:
      return "setup";
    case Phase::Warmup:
      return "warmup";
    case Phase::Measure:
      return "measure";
    case Phase::Drain:
      return "drain";
    case Phase::Done:
      return "done";
  }
  return "?";
}

void RunControl::fail(const std::string& message) {
  std::lock_guard lock(mu_);
  if (failed_.load(std::memory_order_relaxed)) return;
  error_ = message;
  failed_.store(true, std::memory_order_relaxed);
}

std::string RunControl::error() const {
  std::lock_guard lock(mu_);
  return error_;
}

bool resolve_loopback(const std::string& host, uint16_t port, LoopOptions& opts,
                      std::string& error) {
  opts.addr = {};
  if (host == "127.0.0.1" || host == "localhost") {
    auto* sin = reinterpret_cast<sockaddr_in*>(&opts.addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    opts.addr_len = sizeof(sockaddr_in);
    opts.target = "127.0.0.1:" + std::to_string(port);
    return true;
  }
  if (host == "::1" || host == "[::1]") {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&opts.addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_loopback;
    opts.addr_len = sizeof(sockaddr_in6);
    opts.target = "[::1]:" + std::to_string(port);
    return true;
  }
  error = "--host must be 127.0.0.1, ::1 or localhost (the bench only targets loopback), got '" +
          host + "'";
  return false;
}

// --- PublishTemplate / InputBuffer -------------------------------------------------------------

void PublishTemplate::build(std::string topic, uint8_t qos, uint32_t payload_size,
                            mqtt::Version version, bool retain) {
  mqtt::Publish p;
  p.topic = std::move(topic);
  p.qos = qos;
  p.retain = retain;
  p.packet_id = qos > 0 ? 1 : 0;
  // Padding is printable so a human watching with mosquitto_sub sees something sane.
  p.payload.assign(payload_size, '.');
  bytes_.clear();
  const mqtt::PublishLayout layout = mqtt::encode_publish(p, version, bytes_);
  payload_offset_ = layout.size - payload_size;
  packet_id_offset_ = layout.packet_id_offset;
  qos_ = qos;
}

char* InputBuffer::prepare(size_t min_free) {
  if (cap_ - end_ >= min_free) return buf_.get() + end_;
  const size_t used = end_ - begin_;
  if (begin_ > 0 && cap_ - used >= min_free) {
    std::memmove(buf_.get(), buf_.get() + begin_, used);
  } else {
    const size_t new_cap = std::max(cap_ * 2, used + min_free);
    auto bigger = std::make_unique<char[]>(new_cap);
    if (used > 0) std::memcpy(bigger.get(), buf_.get() + begin_, used);
    buf_ = std::move(bigger);
    cap_ = new_cap;
  }
  begin_ = 0;
  end_ = used;
  return buf_.get() + end_;
}

// --- ClientLoop ------------------------------------------------------------------------------

ClientLoop::ClientLoop(int index, const LoopOptions& opts, RunControl& control)
    : index_(index), opts_(opts), control_(control) {
  // Created here rather than on the loop's thread: other threads may wake() it at any time.
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

ClientLoop::~ClientLoop() {
  join();
  for (auto& c : clients_) {
    if (c->fd_ >= 0) ::close(c->fd_);
  }
  if (epfd_ >= 0) ::close(epfd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ClientLoop::wake() {
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

Client& ClientLoop::add_client(ClientSpec spec) {
  auto c = std::make_unique<Client>();
  c->spec_ = std::move(spec);
  clients_.push_back(std::move(c));
  return *clients_.back();
}

void ClientLoop::start() {
  thread_ = std::thread([this] { run(); });
}

void ClientLoop::join() {
  if (thread_.joinable()) thread_.join();
}

void ClientLoop::run() {
  run_guarded();
  control_.loop_finished();
}

void ClientLoop::run_guarded() {
  try {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0 || wake_fd_ < 0) {
      control_.fail("epoll_create1/eventfd: " + errno_text(errno));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      control_.fail("epoll_ctl(eventfd): " + errno_text(errno));
      return;
    }
    run_loop();
    if (window_open_) sample_cpu(true, now_ns());
    close_all();
    if (handler_ != nullptr) handler_->finish(stats_);
  } catch (const std::exception& e) {
    control_.fail(std::string("bench thread ") + std::to_string(index_) + ": " + e.what());
  }
}

uint64_t ClientLoop::open_due(uint64_t now) {
  while (next_open_ < clients_.size() && !control_.stopping()) {
    // A client becoming ready frees a slot; that is I/O, which wakes the loop.
    if (opts_.max_connecting > 0 && connecting_ >= opts_.max_connecting) return UINT64_MAX;
    if (opts_.connect_rate > 0 && first_open_ns_ != 0) {
      const uint64_t due = first_open_ns_ + static_cast<uint64_t>(static_cast<double>(next_open_) *
                                                                  1e9 / opts_.connect_rate);
      if (due > now) return due;
    }
    if (first_open_ns_ == 0) {
      first_open_ns_ = now;
      stats_.first_connect_ns = now;
    }
    Client& c = *clients_[next_open_++];
    ++connecting_;
    c.connect_ns_ = now_ns();
    open(c);
  }
  return UINT64_MAX;
}

void ClientLoop::open(Client& c) {
  c.fd_ = ::socket(opts_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd_ < 0) {
    control_.fail("socket: " + errno_text(errno));
    return;
  }
  // Small packets must not wait for Nagle: latency is part of what we measure.
  int one = 1;
  ::setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const bool to_sub = opts_.sub_addr_len != 0 && !c.spec().subscriptions.empty();
  const sockaddr_storage& addr = to_sub ? opts_.sub_addr : opts_.addr;
  const socklen_t addr_len = to_sub ? opts_.sub_addr_len : opts_.addr_len;
  if (::connect(c.fd_, reinterpret_cast<const sockaddr*>(&addr), addr_len) != 0 &&
      errno != EINPROGRESS) {
    client_failed(
        c, "connect to " + (to_sub ? opts_.sub_target : opts_.target) + ": " + errno_text(errno));
    return;
  }
  // Edge-triggered, registered once: no epoll_ctl churn when output backs up. Registering an
  // already-writable socket still yields one EPOLLOUT, which completes the connect.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &c;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd_, &ev) != 0) {
    client_failed(c, "epoll_ctl: " + errno_text(errno));
  }
}

namespace {

// epoll_wait with a nanosecond timeout (epoll_pwait2, Linux 5.11), so rate-mode slots are kept to
// the kernel's timer slack (tens of microseconds) instead of being rounded up to the next
// millisecond, which would add up to 1 ms of the bench's own lateness to every latency from
// schedule. Falls back to epoll_wait's milliseconds on older kernels.
int wait_events(int epfd, epoll_event* events, int max_events, uint64_t timeout_ns) {
  static std::atomic<bool> have_pwait2{true};
  if (have_pwait2.load(std::memory_order_relaxed)) {
    const timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                      static_cast<long>(timeout_ns % 1'000'000'000)};
    const int n = ::epoll_pwait2(epfd, events, max_events, &ts, nullptr);
    if (n >= 0 || errno != ENOSYS) return n;
    have_pwait2.store(false, std::memory_order_relaxed);
  }
  const uint64_t ms = std::min<uint64_t>((timeout_ns + 999'999) / 1'000'000, INT32_MAX);
  return ::epoll_wait(epfd, events, max_events, static_cast<int>(ms));
}

}  // namespace

void ClientLoop::run_loop() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  // The default timer slack (50 us) would make every scheduled send that much late; this
  // thread's timeouts are deadlines (best effort: an error leaves the default).
  ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  uint64_t next_housekeeping = now_ns() + kHousekeepingNs;
  while (!control_.stopping()) {
    const uint64_t now = now_ns();
    loop_now_ = now;
    uint64_t wake = now + kIdleWakeNs;
    if (next_open_ < clients_.size()) wake = std::min(wake, open_due(now));
    if (!started_ && control_.started()) {
      timeline_ = control_.timeline();
      started_ = true;
    }
    if (started_) {
      const Phase phase = timeline_.phase_at(now);
      if (phase >= Phase::Measure && !window_open_ && wall_start_ == 0) sample_cpu(false, now);
      if (phase >= Phase::Drain && window_open_) sample_cpu(true, now);
      if (phase == Phase::Done) break;
      if (phase == Phase::Drain && (handler_ == nullptr || handler_->drained())) break;
      if (handler_ != nullptr && handler_->finished_early()) {
        if (window_open_) sample_cpu(true, now);
        break;
      }
      if (handler_ != nullptr) wake = std::min(wake, handler_->on_tick(now, phase));
      // Wake on phase boundaries so CPU samples and stop times are punctual.
      for (uint64_t b :
           {timeline_.measure_start_ns, timeline_.measure_end_ns, timeline_.drain_end_ns}) {
        if (b > now) {
          wake = std::min(wake, b);
          break;
        }
      }
    } else {
      wake = std::min(wake, now + kSetupPollNs);
    }
    flush_dirty();

    const int n = wait_events(epfd_, events, kMaxEvents, wake > now ? wake - now : 0);
    if (n < 0 && errno != EINTR) {
      control_.fail("epoll_wait: " + errno_text(errno));
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        // Read, then clear: a wake() that lands before the clear is served by this very
        // wake-up (the handler runs next), one after it writes the eventfd again. Clearing
        // first would let the read swallow that second write and leave wake_pending_ set with
        // nothing to read: every later wake() would be ignored. The exchange (not a store)
        // also makes the waker's writes before wake() visible here.
        uint64_t count = 0;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
        wake_pending_.exchange(false, std::memory_order_acq_rel);
        continue;
      }
      on_event(*static_cast<Client*>(events[i].data.ptr), events[i].events);
    }
    if (handler_ != nullptr && started_) handler_->on_io_done(now_ns());
    flush_dirty();
    if (now >= next_housekeeping) {
      housekeeping(now);
      next_housekeeping = now + kHousekeepingNs;
    }
  }
}

void ClientLoop::on_event(Client& c, uint32_t events) {
  if (c.state_ == Client::State::Closed) return;
  if (c.state_ == Client::State::Connecting) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
    return;
  }
  if (c.state_ == Client::State::TlsHandshake) {
    continue_handshake(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    if (c.tls_) {
      read_tls(c);
    } else {
      read_from(c);
    }
  }
  if (c.state_ == Client::State::Closed) return;
  if ((events & EPOLLOUT) && c.want_write_) {
    c.want_write_ = false;
    flush(c);
    if (!c.want_write_ && c.state_ == Client::State::Ready && handler_ != nullptr) {
      handler_->on_writable(c);
    }
  }
}

void ClientLoop::on_connected(Client& c) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(c.fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    client_failed(c, "connect to " + opts_.target + ": " + errno_text(err));
    return;
  }
  if (opts_.tls) {
    c.tls_ = std::make_unique<TlsStream>(*opts_.tls, c.fd_);
    c.state_ = Client::State::TlsHandshake;
    continue_handshake(c);
    return;
  }
  send_connect(c);
}

void ClientLoop::continue_handshake(Client& c) {
  switch (c.tls_->handshake()) {
    case TlsStream::Io::Done:
      if (stats_.tls.empty()) stats_.tls = c.tls_->description();
      send_connect(c);
      flush(c);
      return;
    case TlsStream::Io::WantRead:
    case TlsStream::Io::WantWrite:
      return;  // edge-triggered on both: the next event continues
    case TlsStream::Io::Closed:
      client_failed(c, "TLS handshake with " + opts_.target + ": the broker closed the connection");
      return;
    case TlsStream::Io::Failed:
      client_failed(c, "TLS handshake with " + opts_.target + ": " + c.tls_->error());
      return;
  }
}

void ClientLoop::send_connect(Client& c) {
  c.state_ = Client::State::AwaitConnack;
  mqtt::Connect connect;
  connect.version = opts_.version;
  connect.protocol_name = "MQTT";
  connect.clean_start = true;
  connect.keep_alive = opts_.keep_alive;
  connect.client_id = c.spec_.client_id;
  if (!opts_.username.empty()) connect.username = opts_.username;
  if (!opts_.password.empty()) connect.password = opts_.password;
  if (opts_.session_expiry > 0 && opts_.version == mqtt::Version::V5) {
    connect.properties.session_expiry_interval = opts_.session_expiry;
  }
  mqtt::encode_connect(connect, c.out_);
  mark_dirty(c);
}

void ClientLoop::read_from(Client& c) {
  size_t want = kInitialRead;
  for (;;) {
    char* p = c.in_.prepare(want);
    const size_t room = c.in_.free_space();
    const ssize_t n = ::recv(c.fd_, p, room, 0);
    if (n > 0) {
      c.in_.commit(static_cast<size_t>(n));
      // One clock read per recv(): every message in it arrived at the same moment for us.
      const uint64_t now = now_ns();
      c.last_recv_ns_ = now;
      size_t need = 0;
      if (!handle_frames(c, now, need)) return;
      // Edge-triggered: a short read means the socket is empty; new data raises a new edge.
      if (static_cast<size_t>(n) < room) return;
      // The buffer filled up: read bigger chunks next time, and enough for a partial frame.
      want = std::max(need, std::min(c.in_.capacity(), kMaxReadChunk));
      continue;
    }
    if (n == 0) {
      client_failed(c, "broker closed the connection");
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    client_failed(
        c, errno == ECONNRESET ? "broker reset the connection" : "recv: " + errno_text(errno));
    return;
  }
}

void ClientLoop::read_tls(Client& c) {
  size_t want = kInitialRead;
  for (;;) {
    char* p = c.in_.prepare(want);
    size_t n = 0;
    switch (c.tls_->read(p, c.in_.free_space(), n)) {
      case TlsStream::Io::Done: {
        c.in_.commit(n);
        const uint64_t now = now_ns();
        c.last_recv_ns_ = now;
        size_t need = 0;
        if (!handle_frames(c, now, need)) return;
        // A record at a time: read on until the socket is empty, whatever the count.
        want = std::max(need, kInitialRead);
        continue;
      }
      case TlsStream::Io::WantRead:
        return;
      case TlsStream::Io::WantWrite:
        c.want_write_ = true;  // the next EPOLLOUT writes; reading resumes with new input
        return;
      case TlsStream::Io::Closed:
        client_failed(c, "broker closed the connection");
        return;
      case TlsStream::Io::Failed:
        client_failed(c, "TLS: " + c.tls_->error());
        return;
    }
  }
}

bool ClientLoop::write_plain(Client& c, bool& wrote) {
  while (c.out_off_ < c.out_.size()) {
    const ssize_t n =
        ::send(c.fd_, c.out_.data() + c.out_off_, c.out_.size() - c.out_off_, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off_ += static_cast<size_t>(n);
      wrote = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.want_write_ = true;
      return true;
    }
    const int err = errno;
    const bool closed = err == EPIPE || err == ECONNRESET;
    client_failed(c, std::string(closed ? "broker closed the connection (" : "(") +
                         "send: " + errno_text(err) + ")");
    return false;
  }
  return true;
}

bool ClientLoop::write_tls(Client& c, bool& wrote) {
  while (c.out_off_ < c.out_.size()) {
    size_t n = 0;
    switch (c.tls_->write(c.out_.data() + c.out_off_, c.out_.size() - c.out_off_, n)) {
      case TlsStream::Io::Done:
        c.out_off_ += n;
        wrote = true;
        continue;
      case TlsStream::Io::WantRead:
      case TlsStream::Io::WantWrite:
        c.want_write_ = true;
        return true;
      case TlsStream::Io::Closed:
        client_failed(c, "broker closed the connection");
        return false;
      case TlsStream::Io::Failed:
        client_failed(c, "TLS: " + c.tls_->error());
        return false;
    }
  }
  return true;
}

bool ClientLoop::handle_frames(Client& c, uint64_t now, size_t& need) {
  const std::string_view buf = c.in_.data();
  size_t off = 0;
  while (off < buf.size()) {
    mqtt::FrameHeader h;
    const std::string_view rest = buf.substr(off);
    const mqtt::FrameStatus st = mqtt::read_frame_header(rest, 0, h);
    if (st == mqtt::FrameStatus::Incomplete) break;
    if (st != mqtt::FrameStatus::Ready) {
      client_failed(c, "malformed frame header from broker");
      return false;
    }
    if (rest.size() < h.total_size()) {
      need = h.total_size() - rest.size();
      break;
    }
    if (!handle_packet(c, h.first_byte, rest.substr(h.header_size, h.remaining_length), now)) {
      return false;
    }
    off += h.total_size();
  }
  c.in_.consume(off);
  return true;
}

bool ClientLoop::handle_packet(Client& c, uint8_t first_byte, std::string_view body, uint64_t now) {
  using mqtt::PacketType;
  const auto type = static_cast<PacketType>(first_byte >> 4);
  const uint8_t flags = first_byte & 0x0F;
  const mqtt::Version v = opts_.version;
  if (c.state_ == Client::State::AwaitConnack && type != PacketType::Connack) {
    client_failed(c, "expected CONNACK, got packet type " + std::to_string(int(type)));
    return false;
  }
  switch (type) {
    case PacketType::Publish: {
      mqtt::Publish& p = scratch_publish_;
      if (mqtt::Status st = mqtt::decode_publish(flags, body, v, p); !st.ok()) {
        client_failed(c, std::string("bad PUBLISH from broker: ") + st.message);
        return false;
      }
      if (p.qos > 0) {
        mqtt::Ack ack;
        ack.type = p.qos == 1 ? PacketType::Puback : PacketType::Pubrec;
        ack.packet_id = p.packet_id;
        mqtt::encode_ack(ack, v, c.out_);
        mark_dirty(c);
      }
      if (handler_ != nullptr) handler_->on_message(c, p, now);
      return true;
    }
    case PacketType::Puback:
    case PacketType::Pubrec:
    case PacketType::Pubrel:
    case PacketType::Pubcomp: {
      mqtt::Ack ack;
      if (mqtt::Status st = mqtt::decode_ack(type, flags, body, v, ack); !st.ok()) {
        client_failed(c, std::string("bad acknowledgement from broker: ") + st.message);
        return false;
      }
      if (type == PacketType::Pubrel) {
        // We deliver QoS 2 messages on PUBLISH (the bench counts duplicates by sequence
        // number itself), so PUBREL only needs its PUBCOMP.
        mqtt::Ack comp;
        comp.type = PacketType::Pubcomp;
        comp.packet_id = ack.packet_id;
        mqtt::encode_ack(comp, v, c.out_);
        mark_dirty(c);
        return true;
      }
      if (type == PacketType::Pubrec && ack.reason_code < 0x80) {
        mqtt::Ack rel;
        rel.type = PacketType::Pubrel;
        rel.packet_id = ack.packet_id;
        mqtt::encode_ack(rel, v, c.out_);
        mark_dirty(c);
        return true;
      }
      if (!release_packet_id(c, ack.packet_id)) {
        client_failed(c, "acknowledgement for packet id " + std::to_string(ack.packet_id) +
                             " that is not in flight");
        return false;
      }
      if (ack.reason_code >= 0x80) ++stats_.rejected;
      if (handler_ != nullptr) handler_->on_publish_done(c, ack.packet_id, ack.reason_code, now);
      return true;
    }
    case PacketType::Connack: {
      if (c.state_ != Client::State::AwaitConnack) {
        client_failed(c, "unexpected CONNACK");
        return false;
      }
      mqtt::Connack ack;
      if (mqtt::Status st = mqtt::decode_connack(flags, body, v, ack); !st.ok()) {
        client_failed(c, std::string("bad CONNACK: ") + st.message);
        return false;
      }
      if (ack.reason_code != mqtt::reason::Success) {
        client_failed(c, "connection refused, CONNACK reason " + hex2(ack.reason_code));
        return false;
      }
      c.send_quota_ = ack.properties.receive_maximum.value_or(65535);
      if (opts_.max_inflight > 0) c.send_quota_ = std::min(c.send_quota_, opts_.max_inflight);
      c.keep_alive_ = ack.properties.server_keep_alive.value_or(opts_.keep_alive);
      stats_.connect_latency.record(now > c.connect_ns_ ? now - c.connect_ns_ : 0);
      if (c.spec_.subscriptions.empty()) {
        became_ready(c, now);
        return true;
      }
      mqtt::Subscribe sub;
      sub.packet_id = 1;
      sub.subscriptions = c.spec_.subscriptions;
      mqtt::encode_subscribe(sub, v, c.out_);
      mark_dirty(c);
      c.state_ = Client::State::AwaitSuback;
      return true;
    }
    case PacketType::Suback: {
      mqtt::Suback ack;
      if (mqtt::Status st = mqtt::decode_suback(flags, body, v, ack); !st.ok()) {
        client_failed(c, std::string("bad SUBACK: ") + st.message);
        return false;
      }
      if (c.state_ == Client::State::Ready) {
        // Acknowledges a subscribe() made while running.
        if (!release_packet_id(c, ack.packet_id, false)) {
          client_failed(c, "SUBACK for packet id " + std::to_string(ack.packet_id) +
                               " that is not in flight");
          return false;
        }
        --c.pending_subs_;
        for (uint8_t code : ack.reason_codes) {
          if (code >= 0x80) {
            client_failed(c, "subscription refused with " + hex2(code));
            return false;
          }
        }
        if (handler_ != nullptr) handler_->on_suback(c, ack.packet_id, now);
        return true;
      }
      if (c.state_ != Client::State::AwaitSuback || ack.packet_id != 1 ||
          ack.reason_codes.size() != c.spec_.subscriptions.size()) {
        client_failed(c, "unexpected SUBACK");
        return false;
      }
      for (size_t i = 0; i < ack.reason_codes.size(); ++i) {
        if (ack.reason_codes[i] >= 0x80) {
          client_failed(c, "subscription to '" + c.spec_.subscriptions[i].filter +
                               "' refused with " + hex2(ack.reason_codes[i]));
          return false;
        }
      }
      became_ready(c, now);
      return true;
    }
    case PacketType::Unsuback: {
      mqtt::Unsuback ack;
      if (mqtt::Status st = mqtt::decode_unsuback(flags, body, v, ack); !st.ok()) {
        client_failed(c, std::string("bad UNSUBACK: ") + st.message);
        return false;
      }
      if (c.state_ != Client::State::Ready || !release_packet_id(c, ack.packet_id, false)) {
        client_failed(c, "unexpected UNSUBACK");
        return false;
      }
      --c.pending_subs_;
      if (handler_ != nullptr) handler_->on_unsuback(c, ack.packet_id, now);
      return true;
    }
    case PacketType::Pingresp: {
      const uint64_t sent = c.ping_sent_ns_;
      c.ping_sent_ns_ = 0;
      if (c.ping_reported_) {
        c.ping_reported_ = false;
        if (handler_ != nullptr) handler_->on_pingresp(c, sent, now);
      }
      return true;
    }
    case PacketType::Disconnect: {
      mqtt::Disconnect d;
      const mqtt::Status st = mqtt::decode_disconnect(flags, body, v, d);
      std::string what = "broker sent DISCONNECT";
      if (st.ok()) {
        what += " with reason " + hex2(d.reason_code);
        if (d.properties.reason_string) what += " (" + *d.properties.reason_string + ")";
      }
      client_failed(c, what);
      return false;
    }
    default:
      client_failed(c, "unexpected packet type " + std::to_string(int(type)) + " from broker");
      return false;
  }
}

void ClientLoop::became_ready(Client& c, uint64_t now) {
  c.state_ = Client::State::Ready;
  // The initial SUBSCRIBE used packet id 1 outside the id bitmap; publishes may use it now.
  --connecting_;
  ++stats_.connected;
  stats_.last_ready_ns = std::max(stats_.last_ready_ns, now);
  if (!c.spec_.defer_ready) {
    c.counted_ready_ = true;
    control_.client_ready();
  }
  if (handler_ != nullptr) handler_->on_client_ready(c, now);
}

void ClientLoop::mark_ready(Client& c) {
  if (c.counted_ready_ || c.state_ != Client::State::Ready) return;
  c.counted_ready_ = true;
  control_.client_ready();
}

uint16_t ClientLoop::subscribe(Client& c, const std::vector<mqtt::SubscriptionRequest>& subs) {
  if (c.state_ != Client::State::Ready) return 0;
  mqtt::Subscribe sub;
  sub.packet_id = allocate_packet_id(c, false);
  sub.subscriptions = subs;
  mqtt::encode_subscribe(sub, opts_.version, c.out_);
  ++c.pending_subs_;
  mark_dirty(c);
  return sub.packet_id;
}

uint16_t ClientLoop::unsubscribe(Client& c, const std::vector<std::string>& filters) {
  if (c.state_ != Client::State::Ready) return 0;
  mqtt::Unsubscribe unsub;
  unsub.packet_id = allocate_packet_id(c, false);
  unsub.filters = filters;
  mqtt::encode_unsubscribe(unsub, opts_.version, c.out_);
  ++c.pending_subs_;
  mark_dirty(c);
  return unsub.packet_id;
}

bool ClientLoop::publish_packet(Client& c, mqtt::Publish& p) {
  if (c.state_ != Client::State::Ready) return false;
  p.packet_id = 0;
  if (p.qos > 0) {
    if (c.inflight_ >= c.send_quota_) return false;
    p.packet_id = allocate_packet_id(c);
  }
  mqtt::encode_publish(p, opts_.version, c.out_);
  mark_dirty(c);
  return true;
}

void ClientLoop::ping(Client& c) {
  if (c.state_ != Client::State::Ready) return;
  mqtt::encode_pingreq(c.out_);
  // A keep-alive PINGREQ already outstanding answers this one too.
  if (c.ping_sent_ns_ == 0) c.ping_sent_ns_ = now_ns();
  c.ping_reported_ = true;
  mark_dirty(c);
}

bool ClientLoop::publish(Client& c, const PublishTemplate& t, const PayloadHeader& h) {
  if (c.state_ != Client::State::Ready) return false;
  uint16_t id = 0;
  if (t.qos_ > 0) {
    if (c.inflight_ >= c.send_quota_) return false;
    id = allocate_packet_id(c);
  }
  const size_t pos = c.out_.size();
  c.out_.append(t.bytes_);
  char* p = c.out_.data() + pos;
  if (id != 0) {
    p[t.packet_id_offset_] = static_cast<char>(id >> 8);
    p[t.packet_id_offset_ + 1] = static_cast<char>(id & 0xFF);
  }
  write_payload_header(p + t.payload_offset_, h);
  mark_dirty(c);
  return true;
}

void ClientLoop::mark_dirty(Client& c) {
  if (c.dirty_) return;
  c.dirty_ = true;
  dirty_.push_back(&c);
}

void ClientLoop::flush_dirty() {
  // flush() never adds to dirty_, so iterating by index is safe.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Client* c = dirty_[i];
    c->dirty_ = false;
    flush(*c);
  }
  dirty_.clear();
}

void ClientLoop::flush(Client& c) {
  // Connecting: CONNECT waits for the connect to complete. want_write_: wait for EPOLLOUT.
  if (c.want_write_ || c.state_ == Client::State::Closed || c.state_ == Client::State::Connecting ||
      c.state_ == Client::State::TlsHandshake) {
    return;
  }
  bool wrote = false;
  if (!(c.tls_ ? write_tls(c, wrote) : write_plain(c, wrote))) return;
  if (c.out_off_ == c.out_.size()) {
    c.out_.clear();  // keeps the capacity: steady state appends never allocate
    c.out_off_ = 0;
  } else if (c.out_off_ > kCompactOutput && c.out_off_ * 2 > c.out_.size()) {
    c.out_.erase(0, c.out_off_);
    c.out_off_ = 0;
  }
  // Keep-alive only needs second precision: the iteration's clock will do.
  if (wrote) c.last_send_ns_ = loop_now_;
}

void ClientLoop::housekeeping(uint64_t now) {
  for (auto& cp : clients_) {
    Client& c = *cp;
    if (c.state_ != Client::State::Ready || c.keep_alive_ == 0) continue;
    const uint64_t keep_alive_ns = uint64_t{c.keep_alive_} * kNsPerSec;
    if (c.ping_sent_ns_ != 0 && now - c.ping_sent_ns_ > keep_alive_ns * 3 / 2) {
      client_failed(c, "no PINGRESP within 1.5x keep-alive");
      continue;
    }
    if (c.ping_sent_ns_ == 0 && now - c.last_send_ns_ >= keep_alive_ns / 2) {
      mqtt::encode_pingreq(c.out_);
      c.ping_sent_ns_ = now;
      c.last_send_ns_ = now;
      mark_dirty(c);
    }
  }
}

void ClientLoop::close_all() {
  for (auto& cp : clients_) {
    Client& c = *cp;
    if (c.fd_ < 0) continue;
    if (c.state_ == Client::State::Ready || c.state_ == Client::State::AwaitSuback) {
      // Best effort, never blocking: a clean DISCONNECT keeps broker logs quiet. Whatever was
      // still queued (only after a failure) is dropped.
      std::string bye;
      mqtt::encode_disconnect(mqtt::Disconnect{}, opts_.version, bye);
      if (c.out_off_ == c.out_.size()) {
        if (c.tls_) {
          size_t n = 0;
          c.tls_->write(bye.data(), bye.size(), n);
          c.tls_->close_notify();
        } else {
          [[maybe_unused]] ssize_t n = ::send(c.fd_, bye.data(), bye.size(), MSG_NOSIGNAL);
        }
      }
    }
    ::close(c.fd_);
    c.fd_ = -1;
    c.state_ = Client::State::Closed;
  }
}

uint16_t ClientLoop::allocate_packet_id(Client& c, bool counts_inflight) {
  if (!c.ids_in_use_) c.ids_in_use_ = std::make_unique<uint64_t[]>(65536 / 64);
  uint64_t* bits = c.ids_in_use_.get();
  // Acks come back in order almost always, so the next id is nearly always free.
  uint16_t id = c.next_id_;
  while (bits[id >> 6] & (uint64_t{1} << (id & 63)))
    id = id == 65535 ? 1 : id + 1;
  bits[id >> 6] |= uint64_t{1} << (id & 63);
  c.next_id_ = id == 65535 ? 1 : id + 1;
  if (counts_inflight) ++c.inflight_;
  return id;
}

bool ClientLoop::release_packet_id(Client& c, uint16_t id, bool counts_inflight) {
  if (!c.ids_in_use_ || id == 0) return false;
  uint64_t& word = c.ids_in_use_[id >> 6];
  const uint64_t mask = uint64_t{1} << (id & 63);
  if (!(word & mask)) return false;
  word &= ~mask;
  if (counts_inflight) --c.inflight_;
  return true;
}

void ClientLoop::client_failed(Client& c, const std::string& what) {
  if (c.state_ == Client::State::Closed) return;
  c.state_ = Client::State::Closed;
  if (c.fd_ >= 0) {
    ::close(c.fd_);  // also removes it from the epoll set
    c.fd_ = -1;
  }
  control_.fail(c.spec_.client_id + ": " + what);
}

void ClientLoop::sample_cpu(bool at_end, uint64_t now) {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  if (!at_end) {
    cpu_user_start_ = timeval_s(ru.ru_utime);
    cpu_sys_start_ = timeval_s(ru.ru_stime);
    wait_start_ns_ = thread_wait_ns();
    wall_start_ = now;
    window_open_ = true;
    return;
  }
  stats_.cpu_user_s = timeval_s(ru.ru_utime) - cpu_user_start_;
  stats_.cpu_sys_s = timeval_s(ru.ru_stime) - cpu_sys_start_;
  stats_.wait_s = static_cast<double>(thread_wait_ns() - wait_start_ns_) / 1e9;
  stats_.wall_s = static_cast<double>(now - wall_start_) / 1e9;
  window_open_ = false;
}

}  // namespace starling::bench
