#include "net/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "core/socket_io.h"
#include "metrics/counters.h"
#include "net/layers.h"
#include "net/layers/proxy_protocol.h"
#include "net/layers/tls.h"
#include "net/layers/websocket.h"
#include "net/worker.h"

namespace starling::net {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
// Buffers grown beyond this by a burst are released once empty.
constexpr size_t kKeepCapacity = 64 * 1024;
// Session output is taken only while the socket keeps up: beyond this much unwritten, the
// session's own bounded buffer fills and QoS 0 drops are counted there.
constexpr size_t kMaxUnwritten = 1024 * 1024;
constexpr auto kCloseGrace = std::chrono::seconds(5);
// Lingering close (see linger()): how long, and how many bytes, we read and drop at most.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerMaxBytes = 1024 * 1024;
}  // namespace

Connection::Connection(Worker& worker, int fd, uint64_t token, std::string peer,
                       std::shared_ptr<ListenerContext> listener)
    : worker_(worker),
      token_(token),
      peer_(peer),
      fd_(fd),
      listener_(std::move(listener)),
      last_write_progress_(core::EventLoop::now()),
      client_(worker.broker(), *this) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
  if (address_counted_) worker_.admission().release_address(peer_.host());
  worker_.admission().release_socket(listener_->count);
}

void Connection::start(LayerStack pre_layers, std::string greeting) {
  LayerStack layers = pre_layers.empty() ? make_layers(*listener_, client_.max_packet_size())
                                         : std::move(pre_layers);
  if (!layers.empty()) {
    layered_ = std::make_unique<Layered>();
    layered_->layers = std::move(layers);
  }
  worker_.loop().add(fd_, EPOLLIN | EPOLLRDHUP, this);
  if (!proxy() && !admit_address()) return;
  if (!greeting.empty() && layered_) {
    layered_->lower_buf = std::move(greeting);
    write_some();
  }
}

std::optional<std::string> Connection::certificate_username() const {
  if (tls() == nullptr || !listener_->config.username_from_cert) return std::nullopt;
  return tls()->peer_username();
}

bool Connection::admit_address() {
  address_checked_ = true;
  auto& settings = *worker_.broker().settings();
  const std::string address = peer_.host();
  auto verdict =
      worker_.admission().admit_address(address, settings.limits, core::EventLoop::now());
  if (verdict != Admission::Verdict::Admitted) {
    Admission::count(verdict);
    spdlog::debug("connection from {} refused: {}", peer(), Admission::describe(verdict));
    destroy();
    return false;
  }
  if (settings.limits.max_connections_per_address ||
      settings.limits.max_connection_rate_per_address) {
    address_counted_ = true;  // released when this connection goes
  }
  return true;
}

broker::Attachment Connection::attachment() const {
  return broker::Attachment{&worker_.loop(), token_};
}

void Connection::update_interest() {
  if (destroyed_) return;
  uint32_t events = EPOLLRDHUP;
  if (lingering_ || (!reading_paused_ && !rate_paused_ && !backlog_paused_ && !closing_)) {
    events |= EPOLLIN;
  }
  if (want_write_) events |= EPOLLOUT;
  worker_.loop().modify(fd_, events, this);
}

void Connection::on_io(uint32_t events) {
  if (destroyed_) return;
  if (lingering_) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      destroy();
    } else {
      drop_input();
    }
    return;
  }
  if (events & EPOLLOUT) write_some();
  if (destroyed_) return;
  if ((events & EPOLLIN) && !reading_paused_ && !closing_) {
    if (output_backlogged()) {
      // It sends faster than it reads its answers (PINGRESPs, PUBACKs): stop reading until
      // the socket takes them, so its answers cannot pile up without bound.
      backlog_paused_ = true;
      update_interest();
    } else {
      read_some();
    }
  }
  if (destroyed_) return;
  if ((events & (EPOLLERR | EPOLLHUP)) || ((events & EPOLLRDHUP) && !(events & EPOLLIN))) {
    destroy();
    return;
  }
  // Written after every ready event of this iteration, with whatever other connections and
  // threads add for it meanwhile: one send instead of one per cause.
  worker_.loop().wake(token_);
}

void Connection::read_some() {
  // Reads land in one buffer per thread; a connection keeps only the bytes of a frame that is
  // not complete yet, so an idle connection holds no read buffer at all.
  thread_local std::string scratch(kReadChunk, '\0');
  ssize_t n = ::recv(fd_, scratch.data(), kReadChunk, 0);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    destroy();  // EOF or error: the client went away
    return;
  }
  metrics::add(metrics::Counter::BytesReceived, static_cast<uint64_t>(n));
  const size_t got = static_cast<size_t>(n);
  if (layered_) {
    on_socket_bytes(std::string_view(scratch.data(), got));
    return;
  }
  if (!has_read_input()) {
    size_t used = consume_frames(std::string_view(scratch.data(), got));
    if (used < got && !destroyed_) buffers().read.assign(scratch.data() + used, got - used);
  } else {
    buffers_->read.append(scratch.data(), got);
    process_input();
  }
}

void Connection::on_socket_bytes(std::string_view bytes) {
  thread_local std::string data;
  thread_local std::string up;
  data.assign(bytes);
  // A layer that fails may still have decoded bytes (data frames before a close frame): they
  // go up and are handled before the connection closes.
  std::optional<size_t> failed;
  auto& layers = layered_->layers;
  for (size_t i = 0; i < layers.size() && !data.empty(); ++i) {
    up.clear();
    std::string down;
    bool ok = layers[i].on_input(data, up, down);
    if (!down.empty()) send_below(i, down);
    data.swap(up);
    if (!ok) {
      failed = i;
      break;
    }
    if (i == 0 && proxy() && !address_checked_ && proxy()->established()) {
      if (proxy()->source()) peer_ = core::PeerAddress(*proxy()->source());
      if (!admit_address()) return;
    }
  }
  if (!data.empty() && (!failed || *failed + 1 == layers.size())) {
    buffers().read.append(data);
    process_input();
  }
  if (data.capacity() > kKeepCapacity) std::string().swap(data);
  if (up.capacity() > kKeepCapacity) std::string().swap(up);
  if (destroyed_) return;
  if (failed) {
    layer_failed(*failed);
    return;
  }
  flush();  // handshake answers, and output a layer held until its handshake completed
}

void Connection::send_below(size_t layer, std::string_view bytes) {
  std::string encoded(bytes);
  for (size_t i = layer; i-- > 0;) {
    std::string next;
    if (!layered_->layers[i].on_output(encoded, next)) return;  // it fails on its own input
    encoded.swap(next);
  }
  std::string& lower = layered_->lower_buf;
  if (layered_->lower_pos > 0 && layered_->lower_pos == lower.size()) {
    lower.clear();
    layered_->lower_pos = 0;
  }
  lower += encoded;
}

void Connection::encode_output() {
  if (!buffers_ || buffers_->write_pos >= buffers_->write.size()) return;
  send_below(layered_->layers.size(),
             std::string_view(buffers_->write).substr(buffers_->write_pos));
  buffers_->write.clear();
  buffers_->write_pos = 0;
}

void Connection::say_goodbye() {
  // A WebSocket close frame, then TLS close_notify: the peer sees a clean end of each layer.
  layered_->goodbye_sent = true;
  for (size_t i = layered_->layers.size(); i-- > 0;) {
    std::string down;
    StreamLayer* layer = &layered_->layers[i];
    if (layer == websocket()) websocket()->close(down);
    if (layer == tls()) tls()->close(down);
    if (!down.empty()) send_below(i, down);
  }
}

void Connection::layer_failed(size_t layer) {
  const StreamLayer* failed = &layered_->layers[layer];
  const std::string& why = failed->error();
  const bool established = failed->established();
  if (failed == proxy()) {
    metrics::add(metrics::Counter::ProxyHeaderFailures);
  } else if (failed == tls()) {
    if (!established) metrics::add(metrics::Counter::TlsHandshakeFailures);
  } else if (!established) {
    metrics::add(metrics::Counter::WebSocketHandshakeFailures);
  }
  spdlog::debug("connection from {} on {}: {}", peer(), listener_->config.name, why);
  // What the layer answered (an alert, an HTTP error, a close frame) goes out before closing.
  closing_ = true;
  state_since_ = core::EventLoop::now();
  client_.on_closed();
  update_interest();
  write_some();
}

void Connection::process_input() {
  if (!buffers_) return;
  std::string& input = buffers_->read;
  size_t used = consume_frames(input);
  input.erase(0, used);
  if (input.empty() && input.capacity() > kKeepCapacity) std::string().swap(input);
}

size_t Connection::consume_frames(std::string_view data) {
  size_t pos = 0;
  const auto now = core::EventLoop::now();
  while (!closing_ && !reading_paused_ && !rate_paused_ && !destroyed_ && pos < data.size() &&
         !client_.waiting()) {
    std::string_view available = data.substr(pos);
    if (client_.expecting_connect() && !mqtt::is_connect_first_byte(available[0])) {
      // Not MQTT (an HTTP request, a TLS hello, garbage): no need to wait for a whole frame.
      client_.on_not_mqtt();
      break;
    }
    mqtt::FrameHeader header;
    auto status = mqtt::read_frame_header(available, client_.max_packet_size(), header);
    if (status == mqtt::FrameStatus::Incomplete) break;
    if (status == mqtt::FrameStatus::Malformed) {
      client_.on_malformed_frame();
      break;
    }
    if (status == mqtt::FrameStatus::TooLarge) {
      client_.on_packet_too_large();
      break;
    }
    if (available.size() < header.total_size()) break;
    if (header.type() == mqtt::PacketType::Publish && !publish_allowed(now)) break;
    pos += header.total_size();
    if (!client_.on_packet(header, available.substr(0, header.total_size()))) break;
  }
  return pos;
}

bool Connection::publish_allowed(broker::Clock::time_point now) {
  const uint32_t rate = client_.settings().limits.max_publish_rate;
  if (rate == 0) return true;
  // An empty bucket pauses reading (TCP pushes back on the publisher) until the next tick;
  // nothing is dropped.
  if (!publishes_) publishes_ = std::make_unique<core::TokenBucket>();
  if (publishes_->available(rate, now)) {
    publishes_->take();
    return true;
  }
  if (!rate_paused_) {
    rate_paused_ = true;
    metrics::add(metrics::Counter::LimitPublishRate);
    update_interest();
  }
  return false;
}

void Connection::send(std::string_view bytes) {
  buffers().write.append(bytes);
}

void Connection::flush() {
  if (destroyed_) return;
  client_.release_held_acks();  // acknowledgements the Kafka bridge released (sync mode)
  if (destroyed_) return;
  // Once closing, nothing follows our DISCONNECT or CONNACK ([MQTT-3.14.4-1]): what the session
  // has queued stays there (a persistent one sends it on the next connection).
  if (!closing_ && client_.session() && client_.connected() && unwritten() < kMaxUnwritten) {
    // Without a write buffer (an idle connection woken for a PINGRESP or a message), the
    // session's bytes are taken into a string of their own, and the buffers are made only if
    // there are any: most wake-ups of an idle connection find nothing, and make nothing.
    std::string taken;
    std::string* out = &taken;
    if (buffers_) {
      if (buffers_->write_pos > 0) {
        buffers_->write.erase(0, buffers_->write_pos);
        buffers_->write_pos = 0;
      }
      out = &buffers_->write;
    }
    auto& session = client_.session();
    if (session->take_output(*out)) {
      // Queued messages wait in the store: read the next page, then take what it released.
      session->refill(core::EventLoop::now());
      session->take_output(*out);
    }
    if (!taken.empty()) buffers().write = std::move(taken);
  }
  write_some();
}

void Connection::write_some() {
  std::string* buf = nullptr;
  size_t* pos = nullptr;
  if (layered_) {
    encode_output();
    if (closing_ && !layered_->goodbye_sent) say_goodbye();
    buf = &layered_->lower_buf;
    pos = &layered_->lower_pos;
  } else if (buffers_) {
    buf = &buffers_->write;
    pos = &buffers_->write_pos;
  }
  core::SendResult result = core::SendResult::Done;  // without buffers, nothing to write
  if (buf != nullptr) {
    const size_t before = *pos;
    result = core::send_pending(fd_, *buf, *pos);
    if (*pos != before) {
      metrics::add(metrics::Counter::BytesSent, *pos - before);
      last_write_progress_ = core::EventLoop::now();
    }
  }
  if (backlog_paused_ && result != core::SendResult::Failed && unwritten() < kMaxUnwritten / 2) {
    // Half of the backlog went out: read again (a subscriber under a steady stream must
    // still have its PINGREQs and acks read).
    backlog_paused_ = false;
    update_interest();
  }
  switch (result) {
    case core::SendResult::Done:
      break;
    case core::SendResult::WouldBlock:
      if (!want_write_) {
        want_write_ = true;
        update_interest();
      }
      return;
    case core::SendResult::Failed:
      destroy();
      return;
  }
  if (buf != nullptr) {
    buf->clear();
    *pos = 0;
    if (buf->capacity() > kKeepCapacity) std::string().swap(*buf);  // after a burst
    // A short answer (CONNACK, PINGRESP, an ack) fit in the string itself: nothing in the
    // buffers is worth keeping, so an idle connection gives them back at once, not at the
    // next tick (a PINGREQ to every idle client would otherwise make them all at once).
    // Busy ones keep theirs, with the capacity their bursts grew.
    if (!layered_ && buffers_->read.empty() && buf->capacity() <= std::string().capacity()) {
      buffers_.reset();
    }
  }
  last_write_progress_ = core::EventLoop::now();
  if (want_write_) {
    want_write_ = false;
    update_interest();
  }
  if (closing_) linger();
}

void Connection::linger() {
  if (lingering_ || destroyed_) return;
  // Everything we had to say is written. Closing now, with input the peer sent after it (say,
  // PUBRELs for earlier PUBRECs) still unread, would make the kernel answer with a reset, and
  // a reset makes the peer's kernel throw away what it had not read yet: our DISCONNECT or
  // CONNACK with its reason code. So: half-close (our FIN follows the last bytes), then read
  // and drop until the peer closes, for kLingerTime and kLingerMaxBytes at most.
  lingering_ = true;
  state_since_ = core::EventLoop::now();
  client_.on_closed();
  if (buffers_) std::string().swap(buffers_->read);
  if (::shutdown(fd_, SHUT_WR) != 0) {
    destroy();
    return;
  }
  update_interest();
  drop_input();
}

void Connection::drop_input() {
  thread_local std::string scratch(kReadChunk, '\0');
  for (;;) {
    ssize_t n = ::recv(fd_, scratch.data(), kReadChunk, 0);
    if (n > 0) {
      lingered_bytes_ += static_cast<uint32_t>(n);
      if (lingered_bytes_ <= kLingerMaxBytes) continue;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return;
    }
    destroy();  // the peer closed (it read our last bytes), failed, or sends too much
    return;
  }
}

bool Connection::output_backlogged() const {
  return unwritten() >= kMaxUnwritten;
}

void Connection::close() {
  if (closing_ || destroyed_) return;
  closing_ = true;
  state_since_ = broker::Clock::now();
  update_interest();
  // Flushed and destroyed at the end of this loop iteration, outside the caller's frame.
  worker_.loop().defer([&worker = worker_, token = token_] {
    if (Connection* c = worker.find(token)) c->flush();
  });
}

void Connection::resume_input() {
  if (destroyed_) return;
  reading_paused_ = false;
  update_interest();
  process_input();
  flush();
}

void Connection::pause_reading(bool paused) {
  if (reading_paused_ == paused || destroyed_) return;
  reading_paused_ = paused;
  update_interest();
  if (!paused) {
    process_input();  // frames that arrived before the pause
    flush();
  }
}

void Connection::tick(broker::Clock::time_point now) {
  if (destroyed_) return;
  if (lingering_) {
    if (now - state_since_ > kLingerTime) destroy();
    return;
  }
  if (closing_ && now - state_since_ > kCloseGrace) {
    destroy();  // a peer that does not read its last bytes
    return;
  }
  if (want_write_ &&
      now - last_write_progress_ >
          std::chrono::milliseconds(client_.settings().limits.slow_client_timeout_ms)) {
    // Its output has not moved for that long: it does not read, and what waits for it
    // (buffers, a full queue) would otherwise be held for ever.
    metrics::add(metrics::Counter::LimitSlowClient);
    spdlog::info("client {} ({}) evicted: it has not read its output for {} ms",
                 client_.client_id(), peer(), client_.settings().limits.slow_client_timeout_ms);
    destroy();
    return;
  }
  if (rate_paused_) {
    rate_paused_ = false;
    update_interest();
    process_input();
    if (destroyed_) return;
  }
  release_idle_buffers();
  client_.on_tick(now);
}

void Connection::release_idle_buffers() {
  // Once a second: buffers with nothing in them give their memory back, so a connection that
  // went quiet after a burst (or after its CONNACK) holds none. A busy one pays one allocation
  // a second for it.
  auto release = [](std::string& buf) {
    if (buf.empty() && buf.capacity() > std::string().capacity()) std::string().swap(buf);
  };
  if (buffers_ && buffers_->write.empty() && buffers_->read.empty()) buffers_.reset();
  if (layered_) {
    if (layered_->lower_pos == 0) release(layered_->lower_buf);
    for (size_t i = 0; i < layered_->layers.size(); ++i)
      layered_->layers[i].release_idle_memory();
  }
  if (client_.session() && client_.connected()) client_.session()->release_idle_output();
}

void Connection::destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  client_.on_closed();
  worker_.loop().remove(fd_);
  ::shutdown(fd_, SHUT_RDWR);
  worker_.remove(token_);
}

}  // namespace starling::net
