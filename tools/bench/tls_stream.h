// TLS for the bench's connections (--tls): one client context per run, one TlsStream per
// connection, driven on the connection's non-blocking socket by the loop's thread. What it
// measures is the broker's TLS path; the bench pays the same cipher costs on its side.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

struct ssl_st;  // OpenSSL's SSL and SSL_CTX, kept out of the loop's headers
struct ssl_ctx_st;

namespace starling::bench {

class TlsClientContext {
 public:
  // ca_file: PEM CA certificates the broker's certificate must chain to; empty: the
  // certificate is not verified (the bench only talks to loopback). min_version: "1.2" or
  // "1.3". Null with error set when OpenSSL refuses a setting.
  static std::shared_ptr<TlsClientContext> create(const std::string& ca_file,
                                                  const std::string& min_version,
                                                  std::string& error);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  ssl_ctx_st* native() const { return ctx_; }

 private:
  explicit TlsClientContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
  ssl_ctx_st* ctx_;
};

class TlsStream {
 public:
  enum class Io { Done, WantRead, WantWrite, Closed, Failed };

  TlsStream(const TlsClientContext& context, int fd);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Done once the handshake is complete; WantRead/WantWrite: call again on that event.
  Io handshake();
  // Done with n > 0 bytes; otherwise n == 0 and why not.
  Io read(char* p, size_t room, size_t& n);
  Io write(const char* p, size_t length, size_t& n);

  // Best effort, never blocking: a close_notify alert, so the broker sees a clean end rather
  // than an unexpected EOF.
  void close_notify();

  const std::string& error() const { return error_; }
  std::string description() const;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"

 private:
  Io outcome(int ret);

  ssl_st* ssl_ = nullptr;
  std::string error_;
};

}  // namespace starling::bench
