#include "kafka/schema_registry.h"

#include <nlohmann/json.hpp>

#include <exception>
#include <utility>

#include "http/client/curl_library.h"

namespace starling::kafka {

namespace {

// A schema is a few KiB; anything near this is not a registry answer.
constexpr size_t kMaxResponse = 1 << 20;
// Failed lookups kept before expired ones are swept, so random ids in a topic cannot grow the
// cache without bound.
constexpr size_t kMaxFailures = 1024;

struct Response {
  std::string body;
  bool too_large = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<Response*>(user);
  const size_t len = size * count;
  if (len > kMaxResponse - response->body.size()) {
    response->too_large = true;
    return 0;  // curl stops with CURLE_WRITE_ERROR
  }
  response->body.append(data, len);
  return len;
}

using http_client::CurlLibrary;

struct CurlDeleter {
  const CurlLibrary* curl;
  void operator()(CURL* c) const { curl->easy_cleanup(c); }
};

struct SlistDeleter {
  const CurlLibrary* curl;
  void operator()(curl_slist* l) const { curl->slist_free_all(l); }
};

// The registry's error answers are {"error_code": 40403, "message": "Schema 7 not found"}.
std::string error_message(const std::string& body) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_object()) {
    const auto it = doc.find("message");
    if (it != doc.end() && it->is_string()) return it->get<std::string>();
  }
  return body.substr(0, 200);
}

}  // namespace

SchemaRegistry::SchemaRegistry(std::string url, std::chrono::milliseconds timeout,
                               std::chrono::milliseconds retry_backoff)
    : url_([&] {
        while (!url.empty() && url.back() == '/')
          url.pop_back();
        return std::move(url);
      }()),
      timeout_(timeout),
      retry_backoff_(retry_backoff) {
  // Loaded here, before the consumer threads ask; a failure is reported by every fetch.
  std::string ignored;
  CurlLibrary::get(ignored);
}

SchemaRegistry::~SchemaRegistry() = default;

std::shared_ptr<const AvroSchema> SchemaRegistry::get(int32_t id, std::string& error) {
  if (id < 0) {
    error = "schema id " + std::to_string(id) + " is negative";
    return nullptr;
  }
  std::unique_lock lock(mutex_);
  for (;;) {
    // Looked up again after every wait: a sweep may have dropped an expired failure meanwhile.
    Entry& e = entries_[id];
    if (e.schema) return e.schema;
    if (!e.fetching) {
      if (e.error.empty() || std::chrono::steady_clock::now() >= e.retry_at) break;
      error = e.error;
      return nullptr;
    }
    fetched_.wait(lock);
  }
  entries_[id].fetching = true;
  lock.unlock();

  std::string fetch_error;
  std::shared_ptr<const AvroSchema> schema;
  try {
    schema = fetch(id, fetch_error);
  } catch (const std::exception& ex) {
    fetch_error = "schema " + std::to_string(id) + ": " + ex.what();
  }

  lock.lock();
  Entry& e = entries_[id];
  e.fetching = false;
  if (schema) {
    e.schema = schema;
    e.error.clear();
  } else {
    e.error = fetch_error;
    e.retry_at = std::chrono::steady_clock::now() + retry_backoff_;
    error = std::move(fetch_error);
    if (entries_.size() > kMaxFailures) {
      const auto now = std::chrono::steady_clock::now();
      std::erase_if(entries_, [&](const auto& kv) {
        const Entry& x = kv.second;
        return !x.schema && !x.fetching && now >= x.retry_at;
      });
    }
  }
  fetched_.notify_all();
  return schema;
}

std::shared_ptr<const AvroSchema> SchemaRegistry::fetch(int32_t id, std::string& error) {
  const std::string path = "/schemas/ids/" + std::to_string(id);
  // The base URL may carry credentials, so messages name the path only.
  const std::string what = "schema registry GET " + path + ": ";
  fetches_.fetch_add(1, std::memory_order_relaxed);

  std::string load_error;
  const CurlLibrary* api = CurlLibrary::get(load_error);
  if (api == nullptr) {
    error = what + load_error;
    return nullptr;
  }
  // A fresh handle per fetch: fetches are rare (once per schema id) and nothing is shared.
  std::unique_ptr<CURL, CurlDeleter> curl(api->easy_init(), CurlDeleter{api});
  if (!curl) {
    error = what + "cannot create a curl handle";
    return nullptr;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(
      api->slist_append(nullptr,
                        "Accept: application/vnd.schemaregistry.v1+json, application/json"),
      SlistDeleter{api});
  const std::string url = url_ + path;
  Response response;
  char curl_error[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  const long timeout_ms = static_cast<long>(timeout_.count());
  api->easy_setopt(c, CURLOPT_URL, url.c_str());
  api->easy_setopt(c, CURLOPT_HTTPGET, 1L);
  api->easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  api->easy_setopt(c, CURLOPT_USERAGENT, "starling");
  api->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  api->easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  // No SIGALRM for timeouts: the process has other threads (curl resolves names on its own).
  api->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  api->easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  api->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  api->easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponse));
  api->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  api->easy_setopt(c, CURLOPT_WRITEDATA, &response);
  api->easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);

  const CURLcode rc = api->easy_perform(c);
  if (response.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    error = what + "answer larger than " + std::to_string(kMaxResponse) + " bytes";
    return nullptr;
  }
  if (rc != CURLE_OK) {
    error = what + (curl_error[0] != '\0' ? curl_error : api->easy_strerror(rc));
    return nullptr;
  }
  long status = 0;
  api->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    error = what + "HTTP " + std::to_string(status) + ": " + error_message(response.body);
    return nullptr;
  }

  const auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (!doc.is_object()) {
    error = what + "answer is not a JSON object";
    return nullptr;
  }
  // Absent means AVRO; PROTOBUF and JSON schemas need other decoders.
  if (const auto type = doc.find("schemaType"); type != doc.end()) {
    if (!type->is_string()) {
      error = what + "\"schemaType\" is not a string";
      return nullptr;
    }
    if (type->get<std::string>() != "AVRO") {
      error = what + "schema type " + type->get<std::string>() + " is not Avro";
      return nullptr;
    }
  }
  if (const auto refs = doc.find("references");
      refs != doc.end() && !(refs->is_null() || (refs->is_array() && refs->empty()))) {
    error = what + "schemas with references are not supported";
    return nullptr;
  }
  const auto schema_text = doc.find("schema");
  if (schema_text == doc.end() || !schema_text->is_string()) {
    error = what + "answer has no \"schema\" string";
    return nullptr;
  }
  std::string parse_error;
  auto schema = AvroSchema::parse(schema_text->get_ref<const std::string&>(), parse_error);
  if (!schema) error = what + parse_error;
  return schema;
}

bool AvroConfluentDecoder::decode(std::string_view payload, std::string& json, std::string& error) {
  int32_t id;
  std::string_view body;
  if (!parse_confluent_frame(payload, id, body, error)) return false;
  const auto schema = registry_.get(id, error);
  if (!schema) return false;
  if (!schema->to_json(body, json, error)) {
    error = "schema " + std::to_string(id) + ": " + error;
    return false;
  }
  return true;
}

}  // namespace starling::kafka
