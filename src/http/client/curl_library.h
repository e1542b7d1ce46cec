#pragma once

#include <curl/curl.h>

#include <string>

namespace starling::http_client {

// libcurl's entry points, resolved from libcurl.so.4 the first time a feature needs HTTP (the
// schema registry, the HTTP auth service, JWKS, webhooks). Linked directly, libcurl pulls in about
// twenty libraries (GnuTLS, Kerberos, LDAP, libssh2, ...) whose constructors run at start and keep
// ~3 MiB resident in every broker, used or not; loaded on demand, only a broker that needs it pays
// for it.
struct CurlLibrary {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
  // The multi interface: many transfers on one thread (AsyncClient).
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_cleanup) multi_cleanup;
  decltype(&curl_multi_setopt) multi_setopt;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_wakeup) multi_wakeup;
  decltype(&curl_multi_info_read) multi_info_read;

  // The library, loaded and globally initialised once per process (thread-safe); null with
  // `error` set when it cannot be loaded, which the feature that asked reports. A package must
  // declare libcurl4 itself: dpkg-shlibdeps cannot see a dlopen.
  static const CurlLibrary* get(std::string& error);
};

}  // namespace starling::http_client
