#include "http/client/curl_library.h"

#include <dlfcn.h>

namespace starling::http_client {

namespace {

// The soname of libcurl4 (OpenSSL flavour), the ABI curl.h at build time describes.
constexpr const char* kSoname = "libcurl.so.4";

struct Loaded {
  CurlLibrary library{};
  std::string error;  // empty when library is usable
};

template <typename Function>
bool resolve(void* handle, const char* name, Function& out, std::string& error) {
  void* symbol = dlsym(handle, name);
  if (symbol == nullptr) {
    error = std::string(kSoname) + " has no " + name;
    return false;
  }
  out = reinterpret_cast<Function>(symbol);
  return true;
}

Loaded load() {
  Loaded loaded;
  // Never unloaded: curl keeps global state (its OpenSSL setup) for the process's life.
  void* handle = dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    loaded.error = std::string("cannot load ") + kSoname + ": " + (why != nullptr ? why : "?");
    return loaded;
  }
  CurlLibrary& l = loaded.library;
  std::string& e = loaded.error;
  if (!resolve(handle, "curl_global_init", l.global_init, e) ||
      !resolve(handle, "curl_easy_init", l.easy_init, e) ||
      !resolve(handle, "curl_easy_cleanup", l.easy_cleanup, e) ||
      !resolve(handle, "curl_easy_setopt", l.easy_setopt, e) ||
      !resolve(handle, "curl_easy_perform", l.easy_perform, e) ||
      !resolve(handle, "curl_easy_getinfo", l.easy_getinfo, e) ||
      !resolve(handle, "curl_easy_strerror", l.easy_strerror, e) ||
      !resolve(handle, "curl_slist_append", l.slist_append, e) ||
      !resolve(handle, "curl_slist_free_all", l.slist_free_all, e) ||
      !resolve(handle, "curl_multi_init", l.multi_init, e) ||
      !resolve(handle, "curl_multi_cleanup", l.multi_cleanup, e) ||
      !resolve(handle, "curl_multi_setopt", l.multi_setopt, e) ||
      !resolve(handle, "curl_multi_add_handle", l.multi_add_handle, e) ||
      !resolve(handle, "curl_multi_remove_handle", l.multi_remove_handle, e) ||
      !resolve(handle, "curl_multi_perform", l.multi_perform, e) ||
      !resolve(handle, "curl_multi_poll", l.multi_poll, e) ||
      !resolve(handle, "curl_multi_wakeup", l.multi_wakeup, e) ||
      !resolve(handle, "curl_multi_info_read", l.multi_info_read, e))
    return loaded;
  // Not thread-safe in curl, hence here, under the static's one-time initialisation.
  if (const CURLcode rc = l.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK)
    e = "curl_global_init failed: " + std::string(l.easy_strerror(rc));
  return loaded;
}

}  // namespace

const CurlLibrary* CurlLibrary::get(std::string& error) {
  static const Loaded loaded = load();
  if (!loaded.error.empty()) {
    error = loaded.error;
    return nullptr;
  }
  return &loaded.library;
}

}  // namespace starling::http_client
