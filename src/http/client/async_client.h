// Outbound HTTP without blocking anyone: one thread runs libcurl's multi interface for all the
// requests of one user (the auth service, JWKS, a webhook). Any thread submits a request; its
// callback runs on the client's thread, which must do little (post the answer to a loop, queue
// the next batch). Connections to a host are kept alive and bounded (the pool), and requests
// beyond max_pending fail at once instead of piling up.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace starling::http_client {

struct CurlLibrary;

struct Request {
  std::string url;
  std::string body;  // POSTed as application/json; GET when `get`
  bool get = false;
  std::vector<std::string> headers;  // "Name: value"
  uint32_t timeout_ms = 5000;        // the whole exchange, waiting for a pooled connection too
};

struct Response {
  long status = 0;    // the HTTP status; 0 when no answer came
  std::string body;   // at most kMaxBody bytes (a longer answer is an error)
  std::string error;  // why no answer came ("" when one did)
  bool timed_out = false;
  bool answered() const { return error.empty(); }
};

struct ClientOptions {
  std::string thread_name = "starling-http";  // at most 15 characters
  uint32_t max_connections = 8;               // open connections at most, kept alive
  uint32_t max_pending = 10000;               // requests queued or in flight at most
  std::string ca_file;                        // CA for https; "" = the system's
};

class AsyncClient {
 public:
  using Callback = std::function<void(Response&&)>;
  static constexpr size_t kMaxBody = 1 << 20;

  // Loads libcurl (dlopen) and starts the thread. Throws std::runtime_error when it cannot.
  explicit AsyncClient(ClientOptions options);
  // Stops the thread; requests not answered yet get the error "stopped".
  ~AsyncClient();
  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;

  // Any thread. False, and no callback, when max_pending requests are already waiting.
  bool submit(Request request, Callback done);
  // Any thread: fn runs on the client's thread after delay (retries, refreshes).
  void after(std::chrono::milliseconds delay, std::function<void()> fn);

 private:
  struct Transfer;
  struct Timer {
    std::chrono::steady_clock::time_point due;
    std::function<void()> fn;
  };

  void run();
  void start_transfers(std::vector<std::unique_ptr<Transfer>>& fresh);
  void finish_transfers();
  int run_timers();  // ms to the next timer, or -1

  const CurlLibrary* curl_;
  ClientOptions options_;
  void* multi_ = nullptr;  // CURLM*
  std::mutex mutex_;
  std::vector<std::unique_ptr<Transfer>> inbox_;   // submitted, not started
  std::vector<std::unique_ptr<Transfer>> active_;  // in curl (the client's thread only)
  std::vector<Timer> timers_;
  size_t pending_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace starling::http_client
