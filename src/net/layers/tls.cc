#include "net/layers/tls.h"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>

namespace starling::net {

namespace {

// The oldest error in this thread's OpenSSL queue, which is then emptied: a worker thread
// serves many connections, and one's errors must not show up as another's.
std::string take_openssl_error() {
  const unsigned long code = ERR_get_error();
  std::string reason;
  if (code != 0) {
    if (const char* text = ERR_reason_error_string(code)) {
      reason = text;
    } else {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      reason = buf;
    }
  }
  ERR_clear_error();
  return reason.empty() ? "unknown error" : reason;
}

// fopen's reason ("No such file or directory") says more than OpenSSL's for a missing file.
void check_readable(const std::string& what, const std::string& path) {
  if (path.empty()) throw std::runtime_error("TLS " + what + " file not set");
  FILE* file = std::fopen(path.c_str(), "r");
  if (!file) {
    throw std::runtime_error("TLS " + what + " file " + path + ": " + std::strerror(errno));
  }
  std::fclose(file);
}

// Encrypted keys are not supported: without this OpenSSL would ask for a password on the
// terminal.
int no_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*user*/) {
  return 0;
}

// MQTT's ALPN name (MQTT 5.0 section 6 mentions none, but "mqtt" is the registered one). A
// client offering only others still gets a connection, without ALPN.
int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned int offered_length, void* /*arg*/) {
  static constexpr std::string_view kMqtt = "mqtt";
  for (unsigned int i = 0; i < offered_length;) {
    const unsigned int length = offered[i];
    if (length == 0 || i + 1 + length > offered_length) break;
    if (std::string_view(reinterpret_cast<const char*>(offered + i + 1), length) == kMqtt) {
      *out = offered + i + 1;
      *out_length = static_cast<unsigned char>(length);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + length;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

// Loads a certificate chain and its private key into ctx (a server's, or a client's for
// mutual TLS). Throws naming the file at fault.
void use_certificate_and_key(SSL_CTX* ctx, const std::string& cert_file,
                             const std::string& key_file) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    throw std::runtime_error("TLS certificate file " + cert_file + ": " + take_openssl_error());
  }
  // The key is read here rather than by SSL_CTX_use_PrivateKey_file to tell a file that is
  // not a key from a key of another certificate.
  std::unique_ptr<BIO, BioDeleter> key_bio(BIO_new_file(key_file.c_str(), "r"));
  std::unique_ptr<EVP_PKEY, KeyDeleter> key(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!key) {
    throw std::runtime_error("TLS key file " + key_file + ": not an unencrypted PEM private key (" +
                             take_openssl_error() + ")");
  }
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (!cert || X509_check_private_key(cert, key.get()) != 1) {
    ERR_clear_error();
    throw std::runtime_error("TLS key file " + key_file + " does not match the certificate in " +
                             cert_file);
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    throw std::runtime_error("TLS key file " + key_file + ": " + take_openssl_error());
  }
}

}  // namespace

TlsContext::TlsContext(SSL_CTX* ctx, TlsSettings settings, bool client)
    : ctx_(ctx), settings_(std::move(settings)), client_(client) {}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

std::shared_ptr<TlsContext> TlsContext::create(const TlsSettings& settings) {
  int min_version = 0;
  if (settings.min_version == "1.2" || settings.min_version.empty()) {
    min_version = TLS1_2_VERSION;
  } else if (settings.min_version == "1.3") {
    min_version = TLS1_3_VERSION;
  } else {
    throw std::runtime_error("TLS min_version must be \"1.2\" or \"1.3\", not \"" +
                             settings.min_version + "\"");
  }
  if (!settings.username_from_cert.empty() && settings.username_from_cert != "cn") {
    throw std::runtime_error("TLS username_from_cert must be \"cn\" or empty, not \"" +
                             settings.username_from_cert + "\"");
  }
  if (settings.require_client_cert && settings.ca_file.empty()) {
    throw std::runtime_error("TLS require_client_cert needs a ca_file to verify them with");
  }
  if (!settings.username_from_cert.empty() && settings.ca_file.empty()) {
    throw std::runtime_error("TLS username_from_cert needs a ca_file to verify certificates with");
  }
  check_readable("certificate", settings.cert_file);
  check_readable("key", settings.key_file);
  if (!settings.ca_file.empty()) check_readable("CA", settings.ca_file);

  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) throw std::runtime_error("TLS context: " + take_openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), min_version);
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections (most of a broker's) give their record buffers back.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_password);
  if (!settings.ciphers.empty() &&
      SSL_CTX_set_cipher_list(ctx.get(), settings.ciphers.c_str()) != 1) {
    throw std::runtime_error("TLS ciphers \"" + settings.ciphers + "\": " + take_openssl_error());
  }
  if (!settings.ciphersuites.empty() &&
      SSL_CTX_set_ciphersuites(ctx.get(), settings.ciphersuites.c_str()) != 1) {
    throw std::runtime_error("TLS ciphersuites \"" + settings.ciphersuites +
                             "\": " + take_openssl_error());
  }

  use_certificate_and_key(ctx.get(), settings.cert_file, settings.key_file);

  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), settings.ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("TLS CA file " + settings.ca_file + ": " + take_openssl_error());
    }
    // Tells clients which CAs their certificate should come from.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx.get(), names);
    }
    SSL_CTX_set_verify(
        ctx.get(),
        SSL_VERIFY_PEER | (settings.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        nullptr);
  }
  // Session resumption with client certificates fails without a session id context.
  static constexpr unsigned char kSessionContext[] = "starling";
  SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);
  ERR_clear_error();
  return std::shared_ptr<TlsContext>(new TlsContext(ctx.release(), settings));
}

std::shared_ptr<TlsContext> TlsContext::create_client(const TlsClientSettings& settings) {
  if (!settings.cert_file.empty()) {
    check_readable("certificate", settings.cert_file);
    check_readable("key", settings.key_file);
  }
  if (!settings.ca_file.empty()) check_readable("CA", settings.ca_file);
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw std::runtime_error("TLS context: " + take_openssl_error());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_default_passwd_cb(ctx.get(), no_password);
  if (!settings.cert_file.empty()) {
    use_certificate_and_key(ctx.get(), settings.cert_file, settings.key_file);
  }
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx.get(), settings.ca_file.c_str(), nullptr) != 1) {
      throw std::runtime_error("TLS CA file " + settings.ca_file + ": " + take_openssl_error());
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    throw std::runtime_error("TLS: the system's CA certificates: " + take_openssl_error());
  }
  SSL_CTX_set_verify(ctx.get(), settings.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  static constexpr unsigned char kAlpn[] = {4, 'm', 'q', 't', 't'};
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn);
  ERR_clear_error();
  TlsSettings kept;
  kept.ca_file = settings.ca_file;
  kept.cert_file = settings.cert_file;
  kept.key_file = settings.key_file;
  return std::shared_ptr<TlsContext>(new TlsContext(ctx.release(), std::move(kept), true));
}

namespace {

// A memory BIO that answers "wait for more" when empty instead of end of stream.
BIO* new_memory_bio() {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio) BIO_set_mem_eof_return(bio, -1);
  return bio;
}

// Empty, and holding a buffer: worth a fresh BIO (on an idle connection; a busy one pays an
// allocation a second for it).
bool holds_idle_memory(BIO* bio) {
  BUF_MEM* mem = nullptr;
  return BIO_ctrl_pending(bio) == 0 && BIO_get_mem_ptr(bio, &mem) == 1 && mem && mem->max > 0;
}

}  // namespace

TlsLayer::TlsLayer(std::shared_ptr<TlsContext> context, const std::string& server_name)
    : context_(std::move(context)) {
  ssl_ = SSL_new(context_->native());
  in_ = new_memory_bio();
  out_ = new_memory_bio();
  if (!ssl_ || !in_ || !out_) {
    SSL_free(ssl_);
    BIO_free(in_);
    BIO_free(out_);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  SSL_set_bio(ssl_, in_, out_);
  if (!context_->client()) {
    SSL_set_accept_state(ssl_);
    return;
  }
  // A bridge to another broker: SNI, and the certificate must name the host we asked for.
  SSL_set_connect_state(ssl_);
  if (!server_name.empty()) {
    SSL_set_tlsext_host_name(ssl_, server_name.c_str());
    SSL_set1_host(ssl_, server_name.c_str());
  }
  ERR_clear_error();
}

void TlsLayer::release_idle_memory() {
  if (failed_) return;
  // OpenSSL's record buffers: SSL_MODE_RELEASE_BUFFERS misses some (a read buffer set up for a
  // record that was not there yet stays); this frees them unless they hold data.
  if (established_) SSL_free_buffers(ssl_);
  if (holds_idle_memory(in_)) {
    if (BIO* fresh = new_memory_bio()) {
      SSL_set0_rbio(ssl_, fresh);  // frees the old one
      in_ = fresh;
    }
  }
  if (holds_idle_memory(out_)) {
    if (BIO* fresh = new_memory_bio()) {
      SSL_set0_wbio(ssl_, fresh);
      out_ = fresh;
    }
  }
}

TlsLayer::~TlsLayer() {
  SSL_free(ssl_);  // frees the BIOs too
}

bool TlsLayer::fail(std::string reason, std::string& down) {
  drain(down);  // the alert telling the peer why, if OpenSSL wrote one
  failed_ = true;
  error_ = std::move(reason);
  ERR_clear_error();
  return false;
}

void TlsLayer::drain(std::string& down) {
  const size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  const size_t old = down.size();
  down.resize(old + pending);
  size_t read = 0;
  if (BIO_read_ex(out_, down.data() + old, pending, &read) != 1) read = 0;
  down.resize(old + read);
}

bool TlsLayer::on_input(std::string_view in, std::string& up, std::string& down) {
  if (failed_) return false;
  ERR_clear_error();
  if (!in.empty()) {
    size_t written = 0;
    if (BIO_write_ex(in_, in.data(), in.size(), &written) != 1 || written != in.size()) {
      return fail("TLS: out of memory", down);
    }
  }
  if (!established_) {
    if (!handshake(down)) return false;
    if (!established_) {
      drain(down);
      return true;
    }
  }
  return read_records(up, down);
}

bool TlsLayer::handshake(std::string& down) {
  const int result = SSL_do_handshake(ssl_);
  if (result != 1) {
    const int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_WANT_READ) return true;
    std::string reason = take_openssl_error();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      reason += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
    return fail("TLS handshake failed: " + reason, down);
  }
  established_ = true;
  if (context_->settings().username_from_cert == "cn") {
    X509* cert = SSL_get0_peer_certificate(ssl_);
    if (cert && SSL_get_verify_result(ssl_) == X509_V_OK) {
      X509_NAME* subject = X509_get_subject_name(cert);
      const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
      if (index >= 0) {
        const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
        unsigned char* utf8 = nullptr;
        const int length = ASN1_STRING_to_UTF8(&utf8, value);
        if (length > 0) {
          std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
          // An embedded NUL would let "admin\0.evil" pass for "admin" somewhere downstream.
          if (cn.find('\0') == std::string::npos) peer_username_ = std::move(cn);
        }
        OPENSSL_free(utf8);
      }
    }
    ERR_clear_error();
  }
  if (!early_output_.empty()) {
    const std::string early = std::move(early_output_);
    early_output_ = std::string();
    if (!write_plaintext(early, down)) return false;
  }
  return true;
}

bool TlsLayer::read_records(std::string& up, std::string& down) {
  // Plaintext is never longer than the ciphertext it comes from: sizing `up` by what is
  // waiting avoids a fixed 16 KiB resize per read.
  static constexpr size_t kMaxStep = 64 * 1024;
  for (;;) {
    const size_t waiting = BIO_ctrl_pending(in_) + static_cast<size_t>(SSL_pending(ssl_));
    if (waiting == 0) break;
    const size_t step = std::min(waiting, kMaxStep);
    const size_t old = up.size();
    up.resize(old + step);
    size_t read = 0;
    const int result = SSL_read_ex(ssl_, up.data() + old, step, &read);
    up.resize(old + (result == 1 ? read : 0));
    if (result == 1) continue;
    const int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_WANT_READ) break;
    if (error == SSL_ERROR_ZERO_RETURN) {
      SSL_shutdown(ssl_);  // our close_notify answers theirs
      return fail("TLS closed by peer", down);
    }
    return fail("TLS error: " + take_openssl_error(), down);
  }
  drain(down);  // session tickets, key update answers
  return true;
}

bool TlsLayer::write_plaintext(std::string_view out, std::string& down) {
  while (!out.empty()) {
    size_t written = 0;
    if (SSL_write_ex(ssl_, out.data(), out.size(), &written) != 1) {
      return fail("TLS error: " + take_openssl_error(), down);
    }
    out.remove_prefix(written);
  }
  drain(down);
  return true;
}

bool TlsLayer::on_output(std::string_view out, std::string& down) {
  if (failed_) return false;
  if (!established_) {
    if (early_output_.size() + out.size() > kMaxEarlyOutput) {
      failed_ = true;
      error_ = "TLS: too much output before the handshake completed";
      return false;
    }
    early_output_.append(out);
    return true;
  }
  ERR_clear_error();
  return write_plaintext(out, down);
}

void TlsLayer::close(std::string& down) {
  if (failed_ || !established_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  drain(down);
  ERR_clear_error();
}

std::string TlsLayer::protocol_version() const {
  return SSL_get_version(ssl_);
}

std::string TlsLayer::cipher() const {
  const SSL_CIPHER* current = SSL_get_current_cipher(ssl_);
  return current ? SSL_CIPHER_get_name(current) : "";
}

}  // namespace starling::net
