#include "http/connection.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/socket_io.h"
#include "http/api.h"
#include "http/server.h"
#include "metrics/counters.h"
#include "metrics/histogram.h"

namespace starling::http {

namespace {
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kKeepCapacity = 64 * 1024;  // buffers grown beyond this are released once empty
// A client that pipelines without reading its responses stops being read: at most this many
// responses pending, or this many bytes unwritten.
constexpr size_t kMaxPending = 128;
constexpr size_t kMaxUnwritten = 1024 * 1024;
constexpr auto kCloseGrace = std::chrono::seconds(5);

ParseLimits limits_of(const config::HttpSettings& s) {
  return ParseLimits{s.max_header_bytes, static_cast<size_t>(s.max_body_bytes)};
}
}  // namespace

Connection::Connection(LoopSite& site, int fd, uint64_t token, std::string peer)
    : site_(site),
      fd_(fd),
      token_(token),
      peer_(std::move(peer)),
      loopback_(is_loopback_peer(peer_)),
      parser_(limits_of(site.settings->http)),
      last_activity_(core::EventLoop::now()) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::start() {
  site_.loop->add(fd_, EPOLLIN | EPOLLRDHUP, this);
}

void Connection::update_interest() {
  if (destroyed_) return;
  // EPOLLRDHUP only while reading: a client that half-closed after its last request still
  // gets the answers that are pending (level-triggered, it would be reported again and again).
  // A peer that is really gone shows up as EPOLLHUP/EPOLLERR or a failed send.
  uint32_t events = 0;
  if (!reading_paused_ && !closing_) events |= EPOLLIN | EPOLLRDHUP;
  if (want_write_) events |= EPOLLOUT;
  site_.loop->modify(fd_, events, this);
}

void Connection::on_io(uint32_t events) {
  if (destroyed_) return;
  if (events & EPOLLOUT) write_some();
  if (destroyed_) return;
  if ((events & EPOLLIN) && !reading_paused_ && !closing_) {
    batching_ = true;  // responses to everything read now leave in one send below
    read_some();
    batching_ = false;
  }
  if (destroyed_) return;
  if ((events & (EPOLLERR | EPOLLHUP)) || ((events & EPOLLRDHUP) && !(events & EPOLLIN))) {
    destroy();
    return;
  }
  write_some();
}

bool Connection::backlogged() const {
  return slots_.size() >= kMaxPending || wbuf_.size() - wpos_ >= kMaxUnwritten;
}

void Connection::read_some() {
  thread_local std::string scratch(kReadChunk, '\0');
  ssize_t n = ::recv(fd_, scratch.data(), kReadChunk, 0);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // EOF: the client is done sending. Responses still pending are written first (a client
    // may half-close after its last request); without any, close now.
    if (n == 0 && (!slots_.empty() || wpos_ < wbuf_.size())) {
      no_more_requests_ = true;
      closing_ = true;
      closing_since_ = core::EventLoop::now();
      update_interest();
      return;
    }
    destroy();
    return;
  }
  metrics::add(metrics::Counter::HttpBytesReceived, static_cast<uint64_t>(n));
  last_activity_ = core::EventLoop::now();
  if (no_more_requests_) return;  // bytes after a request that closes the connection
  const size_t got = static_cast<size_t>(n);
  if (rbuf_.empty()) {
    size_t used = consume(std::string_view(scratch.data(), got));
    if (used < got) rbuf_.assign(scratch.data() + used, got - used);
  } else {
    rbuf_.append(scratch.data(), got);
    process_input();
  }
  if (!rbuf_.empty() && backlogged() && !reading_paused_) {
    reading_paused_ = true;  // resumed by write_some once the client reads its responses
    update_interest();
  }
}

void Connection::process_input() {
  size_t used = consume(rbuf_);
  rbuf_.erase(0, used);
  if (rbuf_.empty() && rbuf_.capacity() > kKeepCapacity) std::string().swap(rbuf_);
}

size_t Connection::consume(std::string_view data) {
  size_t pos = 0;
  while (!no_more_requests_ && !destroyed_ && pos < data.size() && !backlogged()) {
    if (!parser_.in_progress()) request_started_ = core::EventLoop::now();
    RequestParser::Result r = parser_.feed(data.substr(pos));
    pos += r.consumed;
    switch (r.event) {
      case RequestParser::Event::NeedMore:
        if (r.consumed == 0) return pos;  // nothing to do with these bytes yet
        break;
      case RequestParser::Event::HeadersDone:
        // The client waits for this before sending its body. After earlier responses only,
        // so it cannot be mistaken for one of theirs.
        if (slots_.empty()) wbuf_.append(kContinue);
        break;
      case RequestParser::Event::Complete:
        handle(parser_.take());
        if (destroyed_) return data.size();  // taken over as MQTT over WebSocket
        break;
      case RequestParser::Event::Error:
        fail(parser_.status(), parser_.error());
        return data.size();
    }
  }
  return pos;
}

bool Connection::upgrade_to_websocket(const Request& request) {
  const std::string* upgrade = request.header("upgrade");
  if (upgrade == nullptr || !site_.server->websocket_handler()) return false;
  std::string value = *upgrade;
  for (char& c : value)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (value.find("websocket") == std::string::npos) return false;
  metrics::add(metrics::Counter::HttpRequests);
  if (!slots_.empty() || wpos_ < wbuf_.size()) {
    // Answers to earlier pipelined requests are still due on this socket.
    fail(400, "a WebSocket upgrade must not follow pipelined requests");
    return true;
  }
  // Out of this loop's epoll set first: the MQTT connection registers the socket itself.
  site_.loop->remove(fd_);
  WebSocketTakeover result =
      site_.server->websocket_handler()(fd_, peer_, request, site_.loop->index());
  if (result.taken) {
    // The socket belongs to an MQTT connection now: leave without closing it.
    destroyed_ = true;
    fd_ = -1;
    site_.server->connection_closed();
    site_.remove(token_);
    return true;
  }
  site_.loop->add(fd_, 0, this);
  no_more_requests_ = true;
  closing_ = true;
  closing_since_ = core::EventLoop::now();
  wbuf_ += result.refusal;
  update_interest();
  return true;
}

void Connection::handle(Request&& request) {
  if (upgrade_to_websocket(request)) return;
  metrics::add(metrics::Counter::HttpRequests);
  // Limits and tokens may have been reloaded; the next request parses under the new ones.
  parser_.set_limits(limits_of(site_.settings->http));
  slots_.push_back(Slot{next_seq_++,
                        false,
                        request.keep_alive,
                        request.method == "HEAD",
                        request.version_minor,
                        std::chrono::steady_clock::now(),
                        {}});
  if (!request.keep_alive) no_more_requests_ = true;
  const uint64_t seq = slots_.back().seq;
  RequestContext ctx{*this, *site_.settings, seq};
  std::optional<Response> response = site_.server->api().handle(request, ctx);
  if (response) complete(seq, std::move(*response));
}

void Connection::fail(int status, const std::string& message) {
  // The stream cannot be parsed past this point: answer, then close.
  no_more_requests_ = true;
  slots_.push_back(Slot{next_seq_++, false, false, false, 1, std::chrono::steady_clock::now(), {}});
  complete(slots_.back().seq, json_error(status, error_code(status), message));
}

void Connection::complete(uint64_t seq, Response&& response) {
  if (destroyed_) return;
  for (Slot& slot : slots_) {
    if (slot.seq == seq) {
      finish(slot, std::move(response));
      flush_ready();
      return;
    }
  }
}

void Connection::finish(Slot& slot, Response&& response) {
  metrics::observe(metrics::Histogram::HttpRequest,
                   std::chrono::steady_clock::now() - slot.started);
  if (response.status < 300) {
    metrics::add(metrics::Counter::HttpResponses2xx);
  } else if (response.status < 500) {
    metrics::add(metrics::Counter::HttpResponses4xx);
  } else {
    metrics::add(metrics::Counter::HttpResponses5xx);
  }
  if (response.close) slot.keep_alive = false;
  // The oldest pending answer goes straight behind what is already in the write buffer (the
  // common case: no copy, no buffer per answer); later ones wait in their slot for it.
  const bool oldest = &slot == &slots_.front();
  serialize(response, slot.keep_alive, slot.head, slot.version_minor, oldest ? wbuf_ : slot.bytes);
  slot.ready = true;
}

// Moves the responses that are ready, in order, to the write buffer. The socket write waits
// for the end of the input batch (on_io), so pipelined responses leave in one send.
void Connection::flush_ready() {
  while (!slots_.empty() && slots_.front().ready) {
    Slot& slot = slots_.front();
    if (wbuf_.empty()) {
      wbuf_.swap(slot.bytes);
    } else {
      wbuf_ += slot.bytes;
    }
    const bool close_after = !slot.keep_alive;
    slots_.pop_front();
    if (close_after) {
      no_more_requests_ = true;
      closing_ = true;
      closing_since_ = core::EventLoop::now();
      slots_.clear();  // nothing after a closing response is answered
      break;
    }
  }
  last_activity_ = core::EventLoop::now();
  if (!batching_) write_some();  // a deferred completion, outside on_io
}

void Connection::write_some() {
  const size_t before = wpos_;
  const core::SendResult result = core::send_pending(fd_, wbuf_, wpos_);
  metrics::add(metrics::Counter::HttpBytesSent, wpos_ - before);
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
  wbuf_.clear();
  wpos_ = 0;
  if (wbuf_.capacity() > kKeepCapacity) std::string().swap(wbuf_);
  if (want_write_) {
    want_write_ = false;
    update_interest();
  }
  if (closing_ && slots_.empty()) {
    destroy();
    return;
  }
  if (reading_paused_ && !backlogged()) {
    // The client read its responses: parse what waited, then read again.
    reading_paused_ = false;
    update_interest();
    batching_ = true;
    process_input();
    batching_ = false;
    if (!destroyed_ && wpos_ < wbuf_.size()) write_some();
  }
}

void Connection::tick(Clock::time_point now) {
  if (destroyed_) return;
  const auto& s = site_.settings->http;
  if (closing_) {
    if (now - closing_since_ > kCloseGrace) destroy();  // a peer that does not read
    return;
  }
  if (parser_.in_progress()) {
    if (now - request_started_ > std::chrono::milliseconds(s.request_timeout_ms)) {
      fail(408, "the request did not arrive whole within " + std::to_string(s.request_timeout_ms) +
                    " ms");
      write_some();
    }
    return;
  }
  const bool idle = slots_.empty() && rbuf_.empty() && wpos_ == wbuf_.size();
  if (idle && now - last_activity_ > std::chrono::milliseconds(s.idle_timeout_ms)) destroy();
}

void Connection::destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  site_.loop->remove(fd_);
  ::shutdown(fd_, SHUT_RDWR);
  site_.server->connection_closed();
  site_.remove(token_);
}

}  // namespace starling::http
