#include "net/layers/tls.h"

#include <openssl/bio.h>
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

// The BIO every TLS connection on a thread reads and writes through. A connection's ciphertext
// never waits in it: a call hands it the bytes that came from the socket (OpenSSL takes them
// all into its record buffer before it asks for more) and the string the encrypted output is
// appended to. Two memory BIOs per connection cost about 0.7 KiB each idle connection; this
// costs nothing per connection. One per thread, not one per process: OpenSSL keeps a BIO's
// retry flags in the BIO itself.
struct BioIo {
  std::string_view input;         // ciphertext OpenSSL has not read yet
  std::string* output = nullptr;  // ciphertext for the peer; null outside a layer's call
};

BioIo& io_of(BIO* bio) {
  return *static_cast<BioIo*>(BIO_get_data(bio));
}

int io_write(BIO* bio, const char* data, size_t length, size_t* written) {
  BIO_clear_retry_flags(bio);
  BioIo& io = io_of(bio);
  if (io.output == nullptr) return 0;  // no call is running: nowhere to put it
  io.output->append(data, length);
  *written = length;
  return 1;
}

int io_read(BIO* bio, char* data, size_t length, size_t* read) {
  BIO_clear_retry_flags(bio);
  BioIo& io = io_of(bio);
  if (io.input.empty()) {
    BIO_set_retry_read(bio);  // "wait for more", not end of stream
    return 0;
  }
  const size_t n = std::min(length, io.input.size());
  std::memcpy(data, io.input.data(), n);
  io.input.remove_prefix(n);
  *read = n;
  return 1;
}

long io_ctrl(BIO* bio, int command, long /*number*/, void* /*pointer*/) {
  switch (command) {
    case BIO_CTRL_PENDING:
      return static_cast<long>(io_of(bio).input.size());
    case BIO_CTRL_FLUSH:  // output is in the caller's string already
      return 1;
    default:
      return 0;
  }
}

int io_create(BIO* bio) {
  BIO_set_data(bio, new (std::nothrow) BioIo);
  if (BIO_get_data(bio) == nullptr) return 0;
  BIO_set_init(bio, 1);
  return 1;
}

int io_destroy(BIO* bio) {
  delete static_cast<BioIo*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

BIO_METHOD* make_io_method() {
  BIO_METHOD* method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "starling-io");
  if (method == nullptr) throw std::bad_alloc();
  BIO_meth_set_write_ex(method, io_write);
  BIO_meth_set_read_ex(method, io_read);
  BIO_meth_set_ctrl(method, io_ctrl);
  BIO_meth_set_create(method, io_create);
  BIO_meth_set_destroy(method, io_destroy);
  return method;
}

// The thread's BIO, made at its first TLS call. The SSLs bound to it hold references, so it
// outlives the thread if they do (another thread binding one of them binds its own BIO first).
BIO* thread_bio() {
  static BIO_METHOD* const method = make_io_method();  // lives as long as the process
  struct Holder {
    BIO* bio = nullptr;
    ~Holder() { BIO_free(bio); }
  };
  thread_local Holder holder;
  if (holder.bio == nullptr) {
    holder.bio = BIO_new(method);
    if (holder.bio == nullptr) {
      ERR_clear_error();
      throw std::bad_alloc();
    }
  }
  return holder.bio;
}

}  // namespace

// One call into OpenSSL for a layer: binds the thread's BIO to the layer's SSL, its input and
// output. Restores what was bound before, so a call made from within another stays correct.
class TlsLayer::Call {
 public:
  Call(TlsLayer& layer, std::string_view input, std::string& output)
      : layer_(layer), bio_(thread_bio()), io_(io_of(bio_)), saved_(io_) {
    if (SSL_get_rbio(layer.ssl_) != bio_) {
      BIO_up_ref(bio_);  // the SSL's reference (one for reading and writing both)
      SSL_set_bio(layer.ssl_, bio_, bio_);
    }
    if (layer.rare_ && !layer.rare_->unread_input.empty()) {
      layer.rare_->unread_input.append(input);
      carried_.swap(layer.rare_->unread_input);
      input = carried_;
    }
    io_.input = input;
    io_.output = &output;
    ERR_clear_error();  // another connection's errors must not show up as this one's
  }
  ~Call() {
    // OpenSSL reads every byte offered before it waits for more; should it ever stop short,
    // the rest is kept rather than lost.
    if (!io_.input.empty() && !layer_.failed_) layer_.rare().unread_input.assign(io_.input);
    io_ = saved_;
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  size_t unread() const { return io_.input.size(); }

 private:
  TlsLayer& layer_;
  BIO* bio_;
  BioIo& io_;
  const BioIo saved_;
  std::string carried_;
};

TlsLayer::TlsLayer(const std::shared_ptr<TlsContext>& context, const std::string& server_name)
    : username_from_cn_(context->settings().username_from_cert == "cn") {
  ssl_ = SSL_new(context->native());  // holds a reference to the SSL_CTX
  if (!ssl_) {
    ERR_clear_error();
    throw std::bad_alloc();
  }
  if (!context->client()) {
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

TlsLayer::~TlsLayer() {
  SSL_free(ssl_);  // drops its reference to the thread's BIO
}

TlsLayer::Rare& TlsLayer::rare() {
  if (!rare_) rare_ = std::make_unique<Rare>();
  return *rare_;
}

const std::string& TlsLayer::error() const {
  static const std::string kNone;
  return rare_ ? rare_->error : kNone;
}

const std::optional<std::string>& TlsLayer::peer_username() const {
  static const std::optional<std::string> kNone;
  return rare_ ? rare_->peer_username : kNone;
}

void TlsLayer::release_idle_memory() {
  if (failed_) return;
  // OpenSSL's record buffers: SSL_MODE_RELEASE_BUFFERS misses some (a read buffer set up for a
  // record that was not there yet stays); this frees them unless they hold data.
  if (established_) SSL_free_buffers(ssl_);
  if (rare_ && rare_->early_output.empty() && rare_->unread_input.empty() &&
      !rare_->peer_username && rare_->error.empty()) {
    rare_.reset();
  }
}

bool TlsLayer::fail(std::string reason) {
  failed_ = true;
  rare().error = std::move(reason);
  ERR_clear_error();
  return false;
}

bool TlsLayer::on_input(std::string_view in, std::string& up, std::string& down) {
  if (failed_) return false;
  Call call(*this, in, down);  // handshake records and alerts go straight to `down`
  if (!established_) {
    if (!handshake()) return false;
    if (!established_) return true;
  }
  return read_records(call, up);
}

bool TlsLayer::handshake() {
  const int result = SSL_do_handshake(ssl_);
  if (result != 1) {
    const int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_WANT_READ) return true;
    std::string reason = take_openssl_error();
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      reason += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    }
    return fail("TLS handshake failed: " + reason);
  }
  established_ = true;
  if (username_from_cn_) {
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
          if (cn.find('\0') == std::string::npos) rare().peer_username = std::move(cn);
        }
        OPENSSL_free(utf8);
      }
    }
    ERR_clear_error();
  }
  if (rare_ && !rare_->early_output.empty()) {
    const std::string early = std::move(rare_->early_output);
    rare_->early_output = std::string();
    if (!write_plaintext(early)) return false;
  }
  return true;
}

bool TlsLayer::read_records(Call& call, std::string& up) {
  // Plaintext is never longer than the ciphertext it comes from: sizing `up` by what is
  // waiting avoids a fixed 16 KiB resize per read.
  static constexpr size_t kMaxStep = 64 * 1024;
  for (;;) {
    const size_t waiting = call.unread() + static_cast<size_t>(SSL_pending(ssl_));
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
      return fail("TLS closed by peer");
    }
    return fail("TLS error: " + take_openssl_error());
  }
  return true;  // session tickets and key update answers went to `down` as they were written
}

bool TlsLayer::write_plaintext(std::string_view out) {
  while (!out.empty()) {
    size_t written = 0;
    if (SSL_write_ex(ssl_, out.data(), out.size(), &written) != 1) {
      return fail("TLS error: " + take_openssl_error());
    }
    out.remove_prefix(written);
  }
  return true;
}

bool TlsLayer::on_output(std::string_view out, std::string& down) {
  if (failed_) return false;
  if (!established_) {
    const size_t held = rare_ ? rare_->early_output.size() : 0;
    if (held + out.size() > kMaxEarlyOutput) {
      return fail("TLS: too much output before the handshake completed");
    }
    rare().early_output.append(out);
    return true;
  }
  Call call(*this, {}, down);
  return write_plaintext(out);
}

void TlsLayer::close(std::string& down) {
  if (failed_ || !established_) return;
  Call call(*this, {}, down);
  SSL_shutdown(ssl_);
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
