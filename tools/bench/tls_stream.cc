#include "tls_stream.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace starling::bench {

namespace {

// The oldest error of this thread's OpenSSL queue, which is then emptied: a loop serves many
// connections and one's errors must not show up as another's.
std::string take_openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return {};
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

std::shared_ptr<TlsClientContext> TlsClientContext::create(const std::string& ca_file,
                                                           const std::string& min_version,
                                                           std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    error = "TLS: " + take_openssl_error();
    return nullptr;
  }
  std::shared_ptr<TlsClientContext> context(new TlsClientContext(ctx));
  if (min_version != "1.2" && min_version != "1.3") {
    error = "--tls-min-version must be 1.2 or 1.3, got '" + min_version + "'";
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Writes take what fits and the loop keeps the rest, like send() on a plain socket.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  static const unsigned char kAlpn[] = {4, 'm', 'q', 't', 't'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
  if (ca_file.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      error = "--tls-ca " + ca_file + ": " + take_openssl_error();
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  return context;
}

TlsClientContext::~TlsClientContext() {
  SSL_CTX_free(ctx_);
}

TlsStream::TlsStream(const TlsClientContext& context, int fd) : ssl_(SSL_new(context.native())) {
  if (ssl_ == nullptr) {
    error_ = take_openssl_error();
    return;
  }
  SSL_set_fd(ssl_, fd);
  SSL_set_connect_state(ssl_);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
}

TlsStream::Io TlsStream::outcome(int ret) {
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return Io::WantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::Closed;
    case SSL_ERROR_SYSCALL: {
      const int saved = errno;
      error_ = take_openssl_error();
      if (!error_.empty()) return Io::Failed;
      // No OpenSSL reason: the socket itself closed or failed.
      if (ret == 0 || saved == 0 || saved == ECONNRESET || saved == EPIPE) return Io::Closed;
      error_ = std::strerror(saved);
      return Io::Failed;
    }
    default:
      error_ = take_openssl_error();
      if (error_.empty()) error_ = "SSL error " + std::to_string(err);
      return Io::Failed;
  }
}

TlsStream::Io TlsStream::handshake() {
  if (ssl_ == nullptr) return Io::Failed;
  const int ret = SSL_do_handshake(ssl_);
  return ret == 1 ? Io::Done : outcome(ret);
}

TlsStream::Io TlsStream::read(char* p, size_t room, size_t& n) {
  n = 0;
  const int ret =
      SSL_read(ssl_, p, static_cast<int>(std::min<size_t>(room, std::numeric_limits<int>::max())));
  if (ret > 0) {
    n = static_cast<size_t>(ret);
    return Io::Done;
  }
  return outcome(ret);
}

TlsStream::Io TlsStream::write(const char* p, size_t length, size_t& n) {
  n = 0;
  const int ret = SSL_write(
      ssl_, p, static_cast<int>(std::min<size_t>(length, std::numeric_limits<int>::max())));
  if (ret > 0) {
    n = static_cast<size_t>(ret);
    return Io::Done;
  }
  return outcome(ret);
}

void TlsStream::close_notify() {
  if (ssl_ != nullptr && SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsStream::description() const {
  const char* cipher = SSL_get_cipher_name(ssl_);
  return std::string(SSL_get_version(ssl_)) + " " + (cipher ? cipher : "?");
}

}  // namespace starling::bench
