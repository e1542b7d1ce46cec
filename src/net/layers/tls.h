// TLS for MQTT listeners on OpenSSL 3: a server context built from the listener's settings
// (reloadable: new connections take the newest context, open ones keep theirs), and a layer
// that runs one connection's TLS over in-memory input and output, so it needs no socket.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "net/layers/stream_layer.h"

struct ssl_st;  // OpenSSL's SSL, SSL_CTX and BIO, kept out of this header
struct ssl_ctx_st;

namespace starling::net {

struct TlsSettings {
  std::string cert_file;  // PEM: the server certificate, then its intermediates
  std::string key_file;   // PEM private key
  // PEM CA certificates: client certificates are verified against them. Empty: none asked.
  std::string ca_file;
  bool require_client_cert = false;  // needs ca_file
  std::string min_version = "1.2";   // "1.2" or "1.3"
  std::string ciphers;               // TLS 1.2 cipher list (OpenSSL syntax); empty: default
  std::string ciphersuites;          // TLS 1.3 suites; empty: default
  // "cn": a verified client certificate's subject CN is the client's username. "": none.
  std::string username_from_cert;
};

// The client side, for bridges to other brokers.
struct TlsClientSettings {
  std::string ca_file;    // PEM CA certificates to verify the server with; "": the system's
  std::string cert_file;  // a client certificate (PEM) and its key, for mutual TLS; "": none
  std::string key_file;
  bool verify = true;  // false: no certificate check at all (testing only)
};

class TlsContext {
 public:
  // Throws std::runtime_error naming the file or setting at fault.
  static std::shared_ptr<TlsContext> create(const TlsSettings& settings);
  static std::shared_ptr<TlsContext> create_client(const TlsClientSettings& settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* native() const { return ctx_; }
  const TlsSettings& settings() const { return settings_; }
  bool client() const { return client_; }

 private:
  TlsContext(ssl_ctx_st* ctx, TlsSettings settings, bool client = false);

  ssl_ctx_st* ctx_;
  TlsSettings settings_;
  bool client_;
};

// The listener's current context: a reload (SIGHUP) swaps in a new one for new connections
// while the workers' threads read it.
class TlsContextHolder {
 public:
  explicit TlsContextHolder(std::shared_ptr<TlsContext> context) : context_(std::move(context)) {}

  std::shared_ptr<TlsContext> get() const { return context_.load(); }
  void set(std::shared_ptr<TlsContext> context) { context_.store(std::move(context)); }
  // Builds a context from settings and swaps it in; on error throws and keeps the old one.
  void reload(const TlsSettings& settings) { set(TlsContext::create(settings)); }

 private:
  std::atomic<std::shared_ptr<TlsContext>> context_;
};

// One connection's TLS. Its SSL reads and writes through the BIO of the thread it runs on
// (one per thread, see tls.cc), bound to this layer's input and output for each call: an idle
// TLS connection holds its SSL and 32 bytes here, no BIO and no buffers of its own.
class TlsLayer final : public StreamLayer {
 public:
  // server_name: for a client context, the SNI name and the name the server's certificate
  // must carry (when the context verifies).
  explicit TlsLayer(const std::shared_ptr<TlsContext>& context,
                    const std::string& server_name = {});
  ~TlsLayer() override;
  TlsLayer(const TlsLayer&) = delete;
  TlsLayer& operator=(const TlsLayer&) = delete;

  bool on_input(std::string_view in, std::string& up, std::string& down) override;
  bool on_output(std::string_view out, std::string& down) override;
  bool established() const override { return established_; }
  const std::string& error() const override;
  // Frees OpenSSL's record buffers when they hold nothing.
  void release_idle_memory() override;

  // The broker ends the connection: appends a close_notify alert for the peer.
  void close(std::string& down);

  // After the handshake. The username taken from a verified client certificate, when the
  // context's username_from_cert asks for one and the certificate has it.
  const std::optional<std::string>& peer_username() const;
  std::string protocol_version() const;  // "TLSv1.3"
  std::string cipher() const;            // "TLS_AES_256_GCM_SHA384"

  // Plaintext kept while the handshake runs (the MQTT side writes nothing before CONNECT).
  static constexpr size_t kMaxEarlyOutput = 256 * 1024;

 private:
  class Call;
  // What most connections never need, made when first used.
  struct Rare {
    std::string early_output;  // plaintext written before the handshake completed
    std::string unread_input;  // ciphertext OpenSSL did not take in a call (kept for the next)
    std::optional<std::string> peer_username;
    std::string error;
  };
  Rare& rare();

  bool handshake();
  bool read_records(Call& call, std::string& up);
  bool write_plaintext(std::string_view out);
  bool fail(std::string reason);

  ssl_st* ssl_ = nullptr;
  std::unique_ptr<Rare> rare_;
  bool established_ = false;
  bool failed_ = false;
  bool username_from_cn_ = false;
};

}  // namespace starling::net
