#include "net/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "metrics/counters.h"
#include "net/socket_io.h"
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
}  // namespace

Connection::Connection(Worker& worker, int fd, uint64_t token, std::string peer)
    : worker_(worker),
      fd_(fd),
      token_(token),
      peer_(std::move(peer)),
      client_(worker.broker(), *this) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::start() {
  worker_.loop().add(fd_, EPOLLIN | EPOLLRDHUP, this);
}

broker::Attachment Connection::attachment() const {
  return broker::Attachment{&worker_.loop(), token_};
}

void Connection::update_interest() {
  if (destroyed_) return;
  uint32_t events = EPOLLRDHUP;
  if (!reading_paused_ && !closing_) events |= EPOLLIN;
  if (want_write_) events |= EPOLLOUT;
  worker_.loop().modify(fd_, events, this);
}

void Connection::on_io(uint32_t events) {
  if (destroyed_) return;
  if (events & EPOLLOUT) write_some();
  if (destroyed_) return;
  if ((events & EPOLLIN) && !reading_paused_ && !closing_) read_some();
  if (destroyed_) return;
  if ((events & (EPOLLERR | EPOLLHUP)) || ((events & EPOLLRDHUP) && !(events & EPOLLIN))) {
    destroy();
    return;
  }
  flush();
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
  if (rbuf_.empty()) {
    size_t used = consume_frames(std::string_view(scratch.data(), got));
    if (used < got) rbuf_.assign(scratch.data() + used, got - used);
  } else {
    rbuf_.append(scratch.data(), got);
    process_input();
  }
}

void Connection::process_input() {
  size_t used = consume_frames(rbuf_);
  rbuf_.erase(0, used);
  if (rbuf_.empty() && rbuf_.capacity() > kKeepCapacity) std::string().swap(rbuf_);
}

size_t Connection::consume_frames(std::string_view data) {
  size_t pos = 0;
  while (!closing_ && !reading_paused_ && !destroyed_ && pos < data.size()) {
    std::string_view available = data.substr(pos);
    if (!client_.connected() && static_cast<uint8_t>(available[0]) != 0x10) {
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
    pos += header.total_size();
    if (!client_.on_packet(header, available.substr(0, header.total_size()))) break;
  }
  return pos;
}

void Connection::send(std::string_view bytes) {
  wbuf_.append(bytes);
}

void Connection::flush() {
  if (destroyed_) return;
  client_.release_held_acks();  // acknowledgements the Kafka bridge released (sync mode)
  if (destroyed_) return;
  if (client_.session() && client_.connected() && wbuf_.size() - wpos_ < kMaxUnwritten) {
    if (wpos_ > 0) {
      wbuf_.erase(0, wpos_);
      wpos_ = 0;
    }
    auto& session = client_.session();
    if (session->take_output(wbuf_)) {
      // Queued messages wait in the store: read the next page, then take what it released.
      session->refill(core::EventLoop::now());
      session->take_output(wbuf_);
    }
  }
  write_some();
}

void Connection::write_some() {
  switch (send_pending(fd_, wbuf_, wpos_, metrics::Counter::BytesSent)) {
    case SendResult::Done:
      break;
    case SendResult::WouldBlock:
      if (!want_write_) {
        want_write_ = true;
        update_interest();
      }
      return;
    case SendResult::Failed:
      destroy();
      return;
  }
  wbuf_.clear();
  wpos_ = 0;
  if (wbuf_.capacity() > kKeepCapacity) std::string().swap(wbuf_);  // after a burst
  if (want_write_) {
    want_write_ = false;
    update_interest();
  }
  if (closing_) destroy();
}

void Connection::close() {
  if (closing_ || destroyed_) return;
  closing_ = true;
  closing_since_ = broker::Clock::now();
  update_interest();
  // Flushed and destroyed at the end of this loop iteration, outside the caller's frame.
  worker_.loop().defer([&worker = worker_, token = token_] {
    if (Connection* c = worker.find(token)) c->flush();
  });
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
  if (closing_ && now - closing_since_ > kCloseGrace) {
    destroy();  // a peer that does not read its last bytes
    return;
  }
  client_.on_tick(now);
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
