#include "http/client/async_client.h"

#include <pthread.h>

#include <algorithm>
#include <stdexcept>

#include "http/client/curl_library.h"

namespace starling::http_client {

struct AsyncClient::Transfer {
  Request request;
  Callback done;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  Response response;
};

namespace {

size_t collect(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<Response*>(user);
  const size_t n = size * count;
  if (response->body.size() + n > AsyncClient::kMaxBody) return 0;  // aborts the transfer
  response->body.append(data, n);
  return n;
}

}  // namespace

AsyncClient::AsyncClient(ClientOptions options) : options_(std::move(options)) {
  std::string error;
  curl_ = CurlLibrary::get(error);
  if (curl_ == nullptr) throw std::runtime_error(error);
  multi_ = curl_->multi_init();
  if (multi_ == nullptr) throw std::runtime_error("curl_multi_init failed");
  const long connections = options_.max_connections;
  curl_->multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, connections);
  curl_->multi_setopt(multi_, CURLMOPT_MAXCONNECTS, connections);
  thread_ = std::thread([this] { run(); });
}

AsyncClient::~AsyncClient() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  curl_->multi_wakeup(multi_);
  thread_.join();
  curl_->multi_cleanup(multi_);
}

bool AsyncClient::submit(Request request, Callback done) {
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || pending_ >= options_.max_pending) return false;
    ++pending_;
    inbox_.push_back(std::move(t));
  }
  curl_->multi_wakeup(multi_);
  return true;
}

void AsyncClient::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    timers_.push_back({std::chrono::steady_clock::now() + delay, std::move(fn)});
  }
  curl_->multi_wakeup(multi_);
}

void AsyncClient::start_transfers(std::vector<std::unique_ptr<Transfer>>& fresh) {
  for (auto& t : fresh) {
    CURL* easy = curl_->easy_init();
    if (easy == nullptr) {
      t->response.error = "curl_easy_init failed";
      Transfer& ref = *t;
      {
        std::lock_guard lock(mutex_);
        --pending_;
      }
      ref.done(std::move(ref.response));
      continue;
    }
    t->easy = easy;
    const Request& r = t->request;
    curl_->easy_setopt(easy, CURLOPT_URL, r.url.c_str());
    curl_->easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_->easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout_ms));
    curl_->easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.timeout_ms));
    curl_->easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_->easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_->easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect);
    curl_->easy_setopt(easy, CURLOPT_WRITEDATA, &t->response);
    curl_->easy_setopt(easy, CURLOPT_PRIVATE, t.get());
    if (!options_.ca_file.empty())
      curl_->easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (!r.get) {
      t->headers = curl_->slist_append(t->headers, "Content-Type: application/json");
      curl_->easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.data());
      curl_->easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    }
    // No "Expect: 100-continue" round trip for bodies over 1 KiB.
    t->headers = curl_->slist_append(t->headers, "Expect:");
    for (const std::string& h : r.headers)
      t->headers = curl_->slist_append(t->headers, h.c_str());
    curl_->easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    curl_->multi_add_handle(multi_, easy);
    active_.push_back(std::move(t));
  }
  fresh.clear();
}

void AsyncClient::finish_transfers() {
  int left = 0;
  while (CURLMsg* msg = curl_->multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode code = msg->data.result;
    Transfer* raw = nullptr;
    curl_->easy_getinfo(easy, CURLINFO_PRIVATE, &raw);
    auto it = std::find_if(active_.begin(), active_.end(),
                           [raw](const auto& t) { return t.get() == raw; });
    std::unique_ptr<Transfer> t = std::move(*it);
    active_.erase(it);
    curl_->multi_remove_handle(multi_, easy);
    if (code == CURLE_OK) {
      curl_->easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->response.status);
    } else {
      t->response.timed_out = code == CURLE_OPERATION_TIMEDOUT;
      t->response.error =
          code == CURLE_WRITE_ERROR ? "answer larger than 1 MiB" : curl_->easy_strerror(code);
      t->response.body.clear();
    }
    curl_->easy_cleanup(easy);
    curl_->slist_free_all(t->headers);
    {
      std::lock_guard lock(mutex_);
      --pending_;
    }
    t->done(std::move(t->response));
  }
}

int AsyncClient::run_timers() {
  std::vector<std::function<void()>> due;
  int next = -1;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->due <= now) {
        due.push_back(std::move(it->fn));
        it = timers_.erase(it);
      } else {
        const auto ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(it->due - now).count() + 1;
        if (next < 0 || ms < next) next = static_cast<int>(ms);
        ++it;
      }
    }
  }
  for (auto& fn : due)
    fn();
  return next;
}

void AsyncClient::run() {
  pthread_setname_np(pthread_self(), options_.thread_name.substr(0, 15).c_str());
  std::vector<std::unique_ptr<Transfer>> fresh;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      fresh.swap(inbox_);
    }
    start_transfers(fresh);
    int running = 0;
    curl_->multi_perform(multi_, &running);
    finish_transfers();
    int wait_ms = run_timers();
    if (wait_ms < 0 || wait_ms > 1000) wait_ms = 1000;
    // Callbacks and timers may have submitted more: look again before sleeping.
    {
      std::lock_guard lock(mutex_);
      if (!inbox_.empty() || stopping_) continue;
    }
    curl_->multi_poll(multi_, nullptr, 0, wait_ms, nullptr);
  }
  // Stopping: nobody waits for the answers any more, but every caller hears of its request.
  {
    std::lock_guard lock(mutex_);
    fresh.swap(inbox_);
    timers_.clear();
  }
  for (auto& t : active_) {
    curl_->multi_remove_handle(multi_, t->easy);
    curl_->easy_cleanup(t->easy);
    curl_->slist_free_all(t->headers);
    fresh.push_back(std::move(t));
  }
  active_.clear();
  for (auto& t : fresh) {
    t->response = Response{};
    t->response.error = "stopped";
    t->done(std::move(t->response));
  }
}

}  // namespace starling::http_client
