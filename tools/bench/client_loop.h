// The bench's MQTT client engine: one ClientLoop per thread, each owning a set of non-blocking
// client connections on its own epoll instance. A connection is only ever touched by its loop's
// thread, so the hot path (read, parse, account, write) takes no locks; the only shared state is
// RunControl, which is read once per loop iteration and written a handful of times per run.
//
// The loop knows the MQTT protocol mechanics (CONNECT/CONNACK, SUBSCRIBE/SUBACK, QoS 1 and 2
// handshakes, keep-alive); what to publish and how to account for what arrives belongs to the
// scenario, which plugs in through LoopHandler.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mqtt/packet.h"
#include "stats.h"
#include "tls_stream.h"

namespace starling::bench {

// CLOCK_MONOTONIC in ns: comparable across the bench's threads (and processes on this machine).
uint64_t now_ns();

enum class Phase : uint8_t { Setup, Warmup, Measure, Drain, Done };
const char* phase_name(Phase p);

// Absolute CLOCK_MONOTONIC times fixed by the runner once every client is connected and
// subscribed. Publishers run from publish_start to measure_end; drain waits for stragglers.
struct Timeline {
  uint64_t publish_start_ns = 0;
  uint64_t measure_start_ns = 0;
  uint64_t measure_end_ns = 0;
  uint64_t drain_end_ns = 0;

  Phase phase_at(uint64_t now) const {
    if (now < publish_start_ns) return Phase::Setup;
    if (now < measure_start_ns) return Phase::Warmup;
    if (now < measure_end_ns) return Phase::Measure;
    if (now < drain_end_ns) return Phase::Drain;
    return Phase::Done;
  }
  bool in_window(uint64_t t) const { return t >= measure_start_ns && t < measure_end_ns; }
};

// Coordination between the runner (main thread) and the loops. Cold: nothing here is touched
// per message.
class RunControl {
 public:
  // Publishes the timeline; loops copy it once they see started().
  void start(const Timeline& t) {
    timeline_ = t;
    started_.store(true, std::memory_order_release);
  }
  bool started() const { return started_.load(std::memory_order_acquire); }
  const Timeline& timeline() const { return timeline_; }

  void client_ready() { ready_.fetch_add(1, std::memory_order_relaxed); }
  int ready_count() const { return ready_.load(std::memory_order_relaxed); }

  // First failure wins; every loop stops soon after.
  void fail(const std::string& message);
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  std::string error() const;

  // Ask every loop to stop at once (SIGINT, setup timeout).
  void stop() { stop_.store(true, std::memory_order_relaxed); }
  bool stopping() const {
    return stop_.load(std::memory_order_relaxed) || failed_.load(std::memory_order_relaxed);
  }

  // Each loop reports once it has closed its connections and left its results.
  void loop_finished() { finished_.fetch_add(1, std::memory_order_release); }
  int finished_count() const { return finished_.load(std::memory_order_acquire); }

 private:
  Timeline timeline_;
  std::atomic<bool> started_{false};
  std::atomic<int> ready_{0};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> finished_{0};
  mutable std::mutex mu_;
  std::string error_;
};

// Where and how to connect.
struct LoopOptions {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string target;  // "host:port", for messages
  // Where clients with subscriptions connect (--sub-port); addr_len 0: addr.
  sockaddr_storage sub_addr{};
  socklen_t sub_addr_len = 0;
  std::string sub_target;
  mqtt::Version version = mqtt::Version::V5;
  uint16_t keep_alive = 60;
  // 5.0 Session Expiry Interval sent in CONNECT; above 0 the broker keeps (and, with durable
  // state, stores) the clients' sessions: the cost of persistence is what gets measured.
  uint32_t session_expiry = 0;
  std::string username;  // CONNECT credentials; empty: none
  std::string password;
  uint32_t max_inflight = 0;  // outgoing QoS 1/2 cap per client; 0: the broker's limit
  // Connection pacing for this loop: new connects per second (0: no pacing) and at most this
  // many clients between connect() and ready at once, so a storm measures the broker rather
  // than overflowing its listen backlog into 1 s SYN retransmits.
  double connect_rate = 0;
  uint32_t max_connecting = 256;
  // --tls: every connection runs TLS over its socket; null: plain TCP.
  std::shared_ptr<TlsClientContext> tls;
};

// Resolves host (127.0.0.1, ::1 or localhost only) and port into opts. False with a message
// otherwise: the bench compares clocks of sender and receiver, and is not a tool to point at
// other people's servers.
bool resolve_loopback(const std::string& host, uint16_t port, LoopOptions& opts,
                      std::string& error);

struct ClientSpec {
  std::string client_id;
  std::vector<mqtt::SubscriptionRequest> subscriptions;  // sent as one SUBSCRIBE after CONNACK
  uint32_t tag = 0;                                      // the scenario's own index for this client
  // The handler says when this client is ready (ClientLoop::mark_ready), e.g. after loading
  // retained messages; until then the runner keeps waiting.
  bool defer_ready = false;
};

// A PUBLISH encoded once per publisher; each message copies it and patches the packet id and
// the payload header, so publishing costs a memcpy rather than an encode.
class PublishTemplate {
 public:
  void build(std::string topic, uint8_t qos, uint32_t payload_size, mqtt::Version version,
             bool retain = false);
  uint8_t qos() const { return qos_; }
  size_t size() const { return bytes_.size(); }

 private:
  friend class ClientLoop;
  std::string bytes_;
  uint32_t payload_offset_ = 0;
  uint32_t packet_id_offset_ = 0;  // 0 for QoS 0
  uint8_t qos_ = 0;
};

// Growable input buffer: reads land directly in it, frames are parsed in place.
class InputBuffer {
 public:
  std::string_view data() const { return {buf_.get() + begin_, end_ - begin_}; }
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Free space at the tail, compacting or growing so at least min_free bytes are there.
  char* prepare(size_t min_free);
  size_t free_space() const { return cap_ - end_; }
  size_t capacity() const { return cap_; }
  void commit(size_t n) { end_ += n; }

 private:
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

class Client {
 public:
  enum class State : uint8_t { Connecting, TlsHandshake, AwaitConnack, AwaitSuback, Ready, Closed };

  const ClientSpec& spec() const { return spec_; }
  uint32_t tag() const { return spec_.tag; }
  State state() const { return state_; }
  bool ready() const { return state_ == State::Ready; }

  // Bytes appended but not yet accepted by the socket.
  size_t pending_output() const { return out_.size() - out_off_; }
  // The socket said EAGAIN; the loop resumes writing on EPOLLOUT.
  bool write_blocked() const { return want_write_; }
  // Outgoing QoS 1/2 publishes not yet completed (PUBACK, or PUBCOMP).
  uint32_t inflight() const { return inflight_; }
  // SUBSCRIBE/UNSUBSCRIBE sent after the first SUBACK and not yet acknowledged.
  uint32_t pending_subscribes() const { return pending_subs_; }
  bool can_publish_qos() const { return inflight_ < send_quota_; }

 private:
  friend class ClientLoop;

  ClientSpec spec_;
  int fd_ = -1;
  State state_ = State::Connecting;
  std::unique_ptr<TlsStream> tls_;  // --tls
  InputBuffer in_;
  std::string out_;
  size_t out_off_ = 0;
  bool want_write_ = false;
  bool dirty_ = false;  // has output to flush at the end of this iteration
  uint64_t last_send_ns_ = 0;
  uint64_t last_recv_ns_ = 0;
  uint64_t ping_sent_ns_ = 0;   // 0: no PINGREQ outstanding
  bool ping_reported_ = false;  // the handler asked for this PINGREQ
  uint64_t connect_ns_ = 0;     // connect() called
  uint16_t keep_alive_ = 0;     // as granted by the broker
  bool counted_ready_ = false;

  // Outgoing QoS > 0: packet ids in use (one bit each), allocated on first use.
  std::unique_ptr<uint64_t[]> ids_in_use_;
  uint16_t next_id_ = 1;
  uint32_t inflight_ = 0;
  uint32_t pending_subs_ = 0;
  uint32_t send_quota_ = 65535;  // min(65535, broker's Receive Maximum)
};

// The scenario's side of one loop. All calls come from the loop's thread.
class LoopHandler {
 public:
  virtual ~LoopHandler() = default;
  // A PUBLISH arrived for c. QoS acknowledgements are already queued by the loop.
  virtual void on_message(Client& c, const mqtt::Publish& p, uint64_t now) = 0;
  // One of c's QoS 1/2 publishes completed (PUBACK, PUBCOMP, or a PUBREC with a failure code).
  virtual void on_publish_done(Client& c, uint16_t packet_id, uint8_t reason, uint64_t now) {
    (void)c, (void)packet_id, (void)reason, (void)now;
  }
  // c got its CONNACK (and SUBACK, if it subscribes at connect): it may publish now. Called in
  // any phase, also before the run starts.
  virtual void on_client_ready(Client& c, uint64_t now) { (void)c, (void)now; }
  // Acknowledgement of a SUBSCRIBE/UNSUBSCRIBE sent with ClientLoop::subscribe/unsubscribe.
  // A refused subscription (reason >= 0x80) fails the run before this is called.
  virtual void on_suback(Client& c, uint16_t packet_id, uint64_t now) {
    (void)c, (void)packet_id, (void)now;
  }
  virtual void on_unsuback(Client& c, uint16_t packet_id, uint64_t now) {
    (void)c, (void)packet_id, (void)now;
  }
  // Answer to a PINGREQ sent with ClientLoop::ping.
  virtual void on_pingresp(Client& c, uint64_t sent_ns, uint64_t now) {
    (void)c, (void)sent_ns, (void)now;
  }
  // c's output had backed up (write_blocked) and the socket took all of it.
  virtual void on_writable(Client& c) { (void)c; }
  // Once per loop iteration after the I/O events were handled: the place to publish what this
  // iteration's messages changed to other threads in one go.
  virtual void on_io_done(uint64_t now) { (void)now; }
  // Once per loop iteration from Warmup on. Returns the absolute time it next wants to be
  // called: 0 at once, UINT64_MAX only when I/O happens.
  virtual uint64_t on_tick(uint64_t now, Phase phase) = 0;
  // During Drain: true once nothing this handler waits for is in flight (ends the loop early).
  virtual bool drained() const = 0;
  // From Warmup on: true when the work is done before the timeline says so (e.g. --count
  // reached and everything delivered); the loop then ends as if drained.
  virtual bool finished_early() const { return false; }
  // After the last iteration, on the loop's thread: leave per-publisher/per-stream results in
  // stats for the runner.
  virtual void finish(ThreadStats& stats) = 0;
};

class ClientLoop {
 public:
  ClientLoop(int index, const LoopOptions& opts, RunControl& control);
  ~ClientLoop();
  ClientLoop(const ClientLoop&) = delete;
  ClientLoop& operator=(const ClientLoop&) = delete;

  // Setup, before start().
  Client& add_client(ClientSpec spec);
  void set_handler(LoopHandler* handler) { handler_ = handler; }
  size_t client_count() const { return clients_.size(); }
  int index() const { return index_; }
  const LoopOptions& options() const { return opts_; }

  void start();
  void join();

  // After join() (or from the handler): this thread's counters.
  ThreadStats& stats() { return stats_; }

  // Hot path, for the handler. Appends one message built from t with header h to c's output;
  // false (nothing appended) when t is QoS 1/2 and c has no packet id left under the broker's
  // Receive Maximum.
  bool publish(Client& c, const PublishTemplate& t, const PayloadHeader& h);
  // Writes c's pending output now (the loop also flushes every client with output once per
  // iteration; this is for publishers that want their send timestamps close to the write).
  void flush(Client& c);
  // Sends a SUBSCRIBE / UNSUBSCRIBE on a ready client; returns its packet id (0 if c is not
  // ready). The handler hears back through on_suback / on_unsuback.
  uint16_t subscribe(Client& c, const std::vector<mqtt::SubscriptionRequest>& subs);
  uint16_t unsubscribe(Client& c, const std::vector<std::string>& filters);
  // Encodes p (a fresh packet id when QoS > 0) onto c's output; false like publish().
  bool publish_packet(Client& c, mqtt::Publish& p);
  // Sends a PINGREQ now; on_pingresp reports the answer.
  void ping(Client& c);
  // For clients with defer_ready: counts c as ready for the runner.
  void mark_ready(Client& c);

  // Thread-safe: makes this loop's epoll_wait return soon, so its handler's on_tick runs (used
  // when another thread changed something the handler waits for). Cheap when repeated: at most
  // one eventfd write until the loop has woken up.
  void wake();

 private:
  void run();
  void run_guarded();
  void run_loop();
  void open(Client& c);
  // Opens the next clients as pacing allows; returns when it next wants to open more.
  uint64_t open_due(uint64_t now);
  void became_ready(Client& c, uint64_t now);
  void on_event(Client& c, uint32_t events);
  void on_connected(Client& c);
  void continue_handshake(Client& c);
  void send_connect(Client& c);
  void read_from(Client& c);
  // read_from for --tls: decrypted bytes until the socket has no more.
  void read_tls(Client& c);
  // Write c's output to the socket, plain or through TLS, until it is all taken or the socket
  // is full (want_write_); false when c failed.
  bool write_plain(Client& c, bool& wrote);
  bool write_tls(Client& c, bool& wrote);
  bool handle_frames(Client& c, uint64_t now, size_t& need);
  bool handle_packet(Client& c, uint8_t first_byte, std::string_view body, uint64_t now);
  void mark_dirty(Client& c);
  void flush_dirty();
  void housekeeping(uint64_t now);
  void close_all();
  // Publishes count towards the client's in-flight quota, (un)subscribes do not.
  uint16_t allocate_packet_id(Client& c, bool counts_inflight = true);
  bool release_packet_id(Client& c, uint16_t id, bool counts_inflight = true);
  void client_failed(Client& c, const std::string& what);
  void sample_cpu(bool at_end, uint64_t now);

  const int index_;
  const LoopOptions opts_;
  RunControl& control_;
  LoopHandler* handler_ = nullptr;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<Client*> dirty_;
  int epfd_ = -1;
  int wake_fd_ = -1;  // eventfd in the epoll set, data.ptr == nullptr
  std::atomic<bool> wake_pending_{false};
  size_t next_open_ = 0;     // clients_[next_open_..] not opened yet
  uint32_t connecting_ = 0;  // opened and not yet ready
  uint64_t first_open_ns_ = 0;
  std::thread thread_;
  Timeline timeline_;
  bool started_ = false;
  mqtt::Publish scratch_publish_;  // reused so decoding a PUBLISH does not allocate
  ThreadStats stats_;
  // rusage and wall clock at the start of the window.
  double cpu_user_start_ = 0;
  double cpu_sys_start_ = 0;
  uint64_t wait_start_ns_ = 0;
  uint64_t wall_start_ = 0;
  bool window_open_ = false;
  uint64_t loop_now_ = 0;  // clock at the top of this iteration, for coarse bookkeeping
};

}  // namespace starling::bench
