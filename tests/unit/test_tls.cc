// TLS contexts and the TLS layer, against an OpenSSL client in memory: certificates made for
// the test (a CA, server and client certificates, and a CA nobody trusts), handshakes that
// pass and fail, data both ways, reloads and the errors of bad settings.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "net/layers/tls.h"

namespace starling::net {
namespace {

namespace fs = std::filesystem;

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

Key make_key() {
  return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// Signed by issuer (with issuer_key), or self-signed when issuer is null.
Cert make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  static long serial = 1;
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Starling tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  if (ca) {
    add_extension(cert.get(), issuer ? issuer : cert.get(), NID_basic_constraints,
                  "critical,CA:TRUE");
    add_extension(cert.get(), issuer ? issuer : cert.get(), NID_key_usage,
                  "critical,keyCertSign,cRLSign");
  }
  X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

void write_cert(const fs::path& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, cert);
  std::fclose(f);
}

void write_key(const fs::path& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

std::string subject_cn(X509* cert) {
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

// The certificates, made once for all tests.
class Pki {
 public:
  static const Pki& get() {
    static const Pki pki;
    return pki;
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  TlsSettings server(const std::string& name = "server") const {
    TlsSettings s;
    s.cert_file = file(name + ".pem");
    s.key_file = file(name + ".key");
    return s;
  }

 private:
  Pki() {
    dir_ = fs::temp_directory_path() / ("starling_test_tls_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    Key ca_key = make_key();
    Cert ca = make_cert("Starling test CA", ca_key.get(), nullptr, nullptr, true);
    write_cert(dir_ / "ca.pem", ca.get());
    Key other_ca_key = make_key();
    Cert other_ca = make_cert("Someone else's CA", other_ca_key.get(), nullptr, nullptr, true);
    write_cert(dir_ / "other_ca.pem", other_ca.get());

    auto leaf = [&](const std::string& name, const std::string& cn, X509* issuer,
                    EVP_PKEY* issuer_key) {
      Key key = make_key();
      Cert cert = make_cert(cn, key.get(), issuer, issuer_key, false);
      write_cert(dir_ / (name + ".pem"), cert.get());
      write_key(dir_ / (name + ".key"), key.get());
    };
    leaf("server", "localhost", ca.get(), ca_key.get());
    leaf("server2", "server2", ca.get(), ca_key.get());
    leaf("alice", "alice", ca.get(), ca_key.get());
    leaf("mallory", "mallory", other_ca.get(), other_ca_key.get());

    FILE* f = std::fopen((dir_ / "garbage.pem").c_str(), "w");
    std::fputs("this is not PEM\n", f);
    std::fclose(f);
  }
  ~Pki() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  fs::path dir_;
};

struct ClientOptions {
  std::string ca_file;  // verify the server against it; empty: no verification
  std::string cert_file;
  std::string key_file;
  int max_version = 0;
  std::string alpn;  // one protocol name to offer
};

// An OpenSSL client over memory BIOs.
class Client {
 public:
  explicit Client(const ClientOptions& options = {}) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (options.max_version) SSL_CTX_set_max_proto_version(ctx_, options.max_version);
    if (!options.ca_file.empty()) {
      EXPECT_EQ(SSL_CTX_load_verify_locations(ctx_, options.ca_file.c_str(), nullptr), 1);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    if (!options.cert_file.empty()) {
      EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, options.cert_file.c_str()), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, options.key_file.c_str(), SSL_FILETYPE_PEM), 1);
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    BIO_set_mem_eof_return(out_, -1);
    SSL_set_bio(ssl_, in_, out_);
    if (!options.alpn.empty()) {
      std::string wire(1, static_cast<char>(options.alpn.size()));
      wire += options.alpn;
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned>(wire.size()));
    }
    SSL_set_connect_state(ssl_);
  }
  ~Client() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  // One handshake step; false once the client has given up.
  bool step() {
    if (done_ || failed_) return !failed_;
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
      done_ = true;
    } else if (SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) {
      failed_ = true;
    }
    ERR_clear_error();
    return !failed_;
  }
  std::string take_output() {
    std::string out(BIO_ctrl_pending(out_), '\0');
    if (!out.empty()) BIO_read(out_, out.data(), static_cast<int>(out.size()));
    return out;
  }
  void give_input(const std::string& in) {
    if (!in.empty()) BIO_write(in_, in.data(), static_cast<int>(in.size()));
  }
  std::string encrypt(const std::string& plaintext) {
    EXPECT_EQ(SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size())),
              static_cast<int>(plaintext.size()));
    return take_output();
  }
  // Plaintext from the server's bytes; also sets closed() on close_notify.
  std::string decrypt(const std::string& ciphertext) {
    give_input(ciphertext);
    std::string out;
    char buf[16384];
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) closed_ = true;
      break;
    }
    ERR_clear_error();
    return out;
  }
  std::string shutdown() {
    SSL_shutdown(ssl_);
    return take_output();
  }

  bool done() const { return done_; }
  bool closed() const { return closed_; }
  SSL* ssl() const { return ssl_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
  bool done_ = false;
  bool failed_ = false;
  bool closed_ = false;
};

struct Handshake {
  bool layer_ok = true;
  bool client_ok = true;
  std::string up;  // plaintext the layer passed up
};

// Moves bytes between client and layer until neither has more to say.
Handshake run(Client& client, TlsLayer& layer) {
  Handshake h;
  for (int round = 0; round < 20; ++round) {
    h.client_ok = client.step();
    const std::string to_server = client.take_output();
    std::string down;
    if (!to_server.empty()) h.layer_ok = layer.on_input(to_server, h.up, down);
    client.give_input(down);
    if (!h.layer_ok) {
      client.step();  // reads the alert
      return h;
    }
    if (to_server.empty() && down.empty() && (client.done() || !h.client_ok)) break;
  }
  h.client_ok = client.step();
  return h;
}

TlsSettings with_ca(TlsSettings s, bool require = false) {
  s.ca_file = Pki::get().file("ca.pem");
  s.require_client_cert = require;
  return s;
}

TEST(Tls, HandshakeAndEcho) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  EXPECT_FALSE(layer.established());
  Client client({.ca_file = pki.file("ca.pem")});
  Handshake h = run(client, layer);
  ASSERT_TRUE(h.layer_ok) << layer.error();
  ASSERT_TRUE(client.done());
  EXPECT_TRUE(layer.established());
  EXPECT_EQ(layer.protocol_version(), "TLSv1.3");
  EXPECT_FALSE(layer.cipher().empty());
  EXPECT_FALSE(layer.peer_username().has_value());
  EXPECT_EQ(subject_cn(SSL_get0_peer_certificate(client.ssl())), "localhost");

  // Client to broker, in pieces.
  const std::string record = client.encrypt("\x10\x10 hello broker");
  std::string up, down;
  for (size_t i = 0; i < record.size(); i += 5) {
    ASSERT_TRUE(layer.on_input(record.substr(i, 5), up, down)) << layer.error();
  }
  EXPECT_EQ(up, "\x10\x10 hello broker");
  client.decrypt(down);  // session tickets, if any still came

  // Broker to client, small and large.
  std::string out;
  ASSERT_TRUE(layer.on_output("hello client", out));
  EXPECT_EQ(client.decrypt(out), "hello client");
  const std::string big(100000, 'b');
  out.clear();
  ASSERT_TRUE(layer.on_output(big, out));
  EXPECT_EQ(client.decrypt(out), big);

  // Many records arriving at once.
  std::string burst;
  for (int i = 0; i < 50; ++i)
    burst += client.encrypt(std::string(1000, static_cast<char>('a' + i % 26)));
  up.clear();
  ASSERT_TRUE(layer.on_input(burst, up, down));
  EXPECT_EQ(up.size(), 50000u);
}

TEST(Tls, Tls12AndAlpn) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  Client client({.max_version = TLS1_2_VERSION, .alpn = "mqtt"});
  Handshake h = run(client, layer);
  ASSERT_TRUE(h.layer_ok) << layer.error();
  EXPECT_EQ(layer.protocol_version(), "TLSv1.2");
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(client.ssl(), &alpn, &alpn_length);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_length), "mqtt");

  // Another ALPN protocol: the connection goes on without ALPN.
  TlsLayer other(TlsContext::create(pki.server()));
  Client h2({.alpn = "h2"});
  ASSERT_TRUE(run(h2, other).layer_ok) << other.error();
  SSL_get0_alpn_selected(h2.ssl(), &alpn, &alpn_length);
  EXPECT_EQ(alpn_length, 0u);
}

TEST(Tls, ClientTrustsAnotherCa) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  Client client({.ca_file = pki.file("other_ca.pem")});
  Handshake h = run(client, layer);
  EXPECT_FALSE(h.layer_ok);
  EXPECT_FALSE(client.done());
  EXPECT_TRUE(layer.error().starts_with("TLS handshake failed: ")) << layer.error();
  EXPECT_NE(layer.error().find("unknown ca"), std::string::npos) << layer.error();
}

TEST(Tls, ClientCertificateFromAnotherCa) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(with_ca(pki.server())));
  Client client({.cert_file = pki.file("mallory.pem"), .key_file = pki.file("mallory.key")});
  Handshake h = run(client, layer);
  EXPECT_FALSE(h.layer_ok);
  EXPECT_NE(layer.error().find("certificate verify failed"), std::string::npos) << layer.error();
  EXPECT_FALSE(layer.peer_username().has_value());
}

TEST(Tls, RequiredClientCertificateMissing) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(with_ca(pki.server(), /*require=*/true)));
  Client client;
  Handshake h = run(client, layer);
  EXPECT_FALSE(h.layer_ok);
  EXPECT_NE(layer.error().find("did not return a certificate"), std::string::npos) << layer.error();

  // Optional: a client without a certificate is fine.
  TlsLayer optional(TlsContext::create(with_ca(pki.server())));
  Client anonymous;
  EXPECT_TRUE(run(anonymous, optional).layer_ok) << optional.error();
  EXPECT_FALSE(optional.peer_username().has_value());
}

TEST(Tls, ClientCertificateCnIsTheUsername) {
  const Pki& pki = Pki::get();
  TlsSettings settings = with_ca(pki.server(), /*require=*/true);
  settings.username_from_cert = "cn";
  for (int max_version : {0, TLS1_2_VERSION}) {
    TlsLayer layer(TlsContext::create(settings));
    Client client({.cert_file = pki.file("alice.pem"),
                   .key_file = pki.file("alice.key"),
                   .max_version = max_version});
    Handshake h = run(client, layer);
    ASSERT_TRUE(h.layer_ok) << layer.error();
    EXPECT_EQ(layer.peer_username(), "alice");
  }
  // Without username_from_cert the certificate is checked but names nobody.
  TlsLayer layer(TlsContext::create(with_ca(pki.server(), true)));
  Client client({.cert_file = pki.file("alice.pem"), .key_file = pki.file("alice.key")});
  ASSERT_TRUE(run(client, layer).layer_ok) << layer.error();
  EXPECT_FALSE(layer.peer_username().has_value());
}

TEST(Tls, MinVersion13RefusesTls12Client) {
  const Pki& pki = Pki::get();
  TlsSettings settings = pki.server();
  settings.min_version = "1.3";
  TlsLayer layer(TlsContext::create(settings));
  Client client({.max_version = TLS1_2_VERSION});
  Handshake h = run(client, layer);
  EXPECT_FALSE(h.layer_ok);
  EXPECT_NE(layer.error().find("unsupported protocol"), std::string::npos) << layer.error();
}

TEST(Tls, GarbageFails) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  std::string up, down;
  EXPECT_FALSE(layer.on_input("GET / HTTP/1.1\r\nHost: x\r\n\r\n", up, down));
  EXPECT_TRUE(layer.error().starts_with("TLS handshake failed: ")) << layer.error();
  EXPECT_GT(layer.error().size(), std::string("TLS handshake failed: ").size());
  EXPECT_TRUE(up.empty());
  // Stays failed.
  EXPECT_FALSE(layer.on_input("more", up, down));
  EXPECT_FALSE(layer.on_output("x", down));
  // Nothing is left in this thread's error queue for the next connection.
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(Tls, StaleThreadErrorsDoNotLeak) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  Client client;
  std::string up;
  for (int round = 0; round < 10 && !client.done(); ++round) {
    client.step();
    const std::string to_server = client.take_output();
    // Another connection's (or library's) error left in this worker thread's queue.
    BIO* bio = BIO_new_mem_buf("junk", 4);
    EXPECT_EQ(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr), nullptr);
    BIO_free(bio);
    ASSERT_NE(ERR_peek_error(), 0u);
    std::string down;
    ASSERT_TRUE(layer.on_input(to_server, up, down)) << layer.error();
    client.give_input(down);
  }
  EXPECT_TRUE(client.done());
  EXPECT_TRUE(layer.established());
}

TEST(Tls, OutputBeforeHandshakeIsKept) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  std::string down;
  ASSERT_TRUE(layer.on_output("early bytes", down));
  EXPECT_TRUE(down.empty());
  Client client;
  std::string received;
  Handshake h;
  for (int round = 0; round < 10; ++round) {
    client.step();
    const std::string to_server = client.take_output();
    std::string out;
    if (!to_server.empty()) {
      ASSERT_TRUE(layer.on_input(to_server, h.up, out)) << layer.error();
    }
    if (client.done()) {
      received += client.decrypt(out);
    } else {
      client.give_input(out);
    }
    if (to_server.empty() && out.empty()) break;
  }
  received += client.decrypt("");
  EXPECT_EQ(received, "early bytes");

  // Bounded.
  TlsLayer greedy(TlsContext::create(pki.server()));
  std::string ignored;
  EXPECT_FALSE(greedy.on_output(std::string(TlsLayer::kMaxEarlyOutput + 1, 'x'), ignored));
  EXPECT_FALSE(greedy.error().empty());
}

TEST(Tls, CloseNotify) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  Client client;
  ASSERT_TRUE(run(client, layer).layer_ok);
  std::string up, down;
  EXPECT_FALSE(layer.on_input(client.shutdown(), up, down));
  EXPECT_EQ(layer.error(), "TLS closed by peer");
  client.decrypt(down);
  EXPECT_TRUE(client.closed());  // the layer answered with its own close_notify

  // The broker closing first.
  TlsLayer closing(TlsContext::create(pki.server()));
  Client other;
  ASSERT_TRUE(run(other, closing).layer_ok);
  std::string bye;
  closing.close(bye);
  other.decrypt(bye);
  EXPECT_TRUE(other.closed());
}

// The layers on a thread share its BIO: two connections' handshakes and records, interleaved
// down to single bytes, must not mix.
TEST(Tls, ConnectionsOnOneThreadDoNotMix) {
  const Pki& pki = Pki::get();
  const auto context = TlsContext::create(pki.server());
  TlsLayer a(context);
  TlsLayer b(context);
  Client client_a;
  Client client_b;
  std::string up_a;
  std::string up_b;
  for (int round = 0; round < 10 && !(client_a.done() && client_b.done()); ++round) {
    client_a.step();
    client_b.step();
    const std::string to_a = client_a.take_output();
    const std::string to_b = client_b.take_output();
    std::string down_a;
    std::string down_b;
    ASSERT_TRUE(a.on_input(to_a, up_a, down_a)) << a.error();
    ASSERT_TRUE(b.on_input(to_b, up_b, down_b)) << b.error();
    client_a.give_input(down_a);
    client_b.give_input(down_b);
  }
  ASSERT_TRUE(client_a.done() && client_b.done());
  ASSERT_TRUE(a.established() && b.established());

  const std::string record_a = client_a.encrypt("for a");
  const std::string record_b = client_b.encrypt("for b, a little longer");
  std::string down;
  for (size_t i = 0; i < std::max(record_a.size(), record_b.size()); ++i) {
    if (i < record_a.size()) {
      ASSERT_TRUE(a.on_input(record_a.substr(i, 1), up_a, down)) << a.error();
    }
    if (i < record_b.size()) {
      ASSERT_TRUE(b.on_input(record_b.substr(i, 1), up_b, down)) << b.error();
    }
  }
  EXPECT_TRUE(down.empty());
  EXPECT_EQ(up_a, "for a");
  EXPECT_EQ(up_b, "for b, a little longer");

  std::string out_a;
  std::string out_b;
  ASSERT_TRUE(a.on_output("to a", out_a));
  ASSERT_TRUE(b.on_output("to b", out_b));
  EXPECT_EQ(client_a.decrypt(out_a), "to a");
  EXPECT_EQ(client_b.decrypt(out_b), "to b");
}

// A listener thread makes the layer and a worker runs it; the layer must also go on working
// on a third thread after the one that ran it has ended (and taken its BIO along).
TEST(Tls, LayerRunsOnAnotherThread) {
  const Pki& pki = Pki::get();
  auto layer = std::make_unique<TlsLayer>(TlsContext::create(pki.server()));
  Client client;
  Handshake h;
  std::thread([&] { h = run(client, *layer); }).join();
  ASSERT_TRUE(h.layer_ok) << layer->error();
  ASSERT_TRUE(client.done());

  const std::string record = client.encrypt("moved");
  std::string up;
  std::string down;
  bool ok = false;
  std::thread([&] { ok = layer->on_input(record, up, down); }).join();
  ASSERT_TRUE(ok) << layer->error();
  EXPECT_EQ(up, "moved");

  std::string out;
  ASSERT_TRUE(layer->on_output("back", out));
  client.decrypt(down);
  EXPECT_EQ(client.decrypt(out), "back");
  layer.reset();  // frees the last reference to the second thread's BIO
}

// The client's Finished and its first record (CONNECT) often arrive in one read.
TEST(Tls, HandshakeEndAndDataInOneRead) {
  const Pki& pki = Pki::get();
  TlsLayer layer(TlsContext::create(pki.server()));
  Client client;
  std::string up;
  for (int round = 0; round < 10 && !client.done(); ++round) {
    client.step();
    std::string to_server = client.take_output();
    if (client.done()) to_server += client.encrypt("\x10\x02 connect");
    std::string down;
    ASSERT_TRUE(layer.on_input(to_server, up, down)) << layer.error();
    client.give_input(down);
  }
  ASSERT_TRUE(client.done());
  EXPECT_TRUE(layer.established());
  EXPECT_EQ(up, "\x10\x02 connect");
}

TEST(Tls, ReloadSwapsForNewLayersOnly) {
  const Pki& pki = Pki::get();
  TlsContextHolder holder(TlsContext::create(pki.server()));
  TlsLayer before(holder.get());
  holder.reload(pki.server("server2"));
  TlsLayer after(holder.get());

  Client old_client;
  ASSERT_TRUE(run(old_client, before).layer_ok) << before.error();
  EXPECT_EQ(subject_cn(SSL_get0_peer_certificate(old_client.ssl())), "localhost");
  Client new_client;
  ASSERT_TRUE(run(new_client, after).layer_ok) << after.error();
  EXPECT_EQ(subject_cn(SSL_get0_peer_certificate(new_client.ssl())), "server2");

  // A failed reload keeps the current context.
  const auto current = holder.get();
  TlsSettings broken = pki.server();
  broken.cert_file = pki.file("missing.pem");
  EXPECT_THROW(holder.reload(broken), std::runtime_error);
  EXPECT_EQ(holder.get(), current);
}

std::string create_error(const TlsSettings& settings) {
  try {
    TlsContext::create(settings);
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(ERR_peek_error(), 0u);
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Tls, BadSettingsGiveClearErrors) {
  const Pki& pki = Pki::get();
  TlsSettings s = pki.server();
  s.cert_file = pki.file("missing.pem");
  std::string e = create_error(s);
  EXPECT_TRUE(contains(e, "certificate") && contains(e, s.cert_file) && contains(e, "No such file"))
      << e;

  s = pki.server();
  s.cert_file = pki.file("garbage.pem");
  e = create_error(s);
  EXPECT_TRUE(contains(e, "certificate file " + s.cert_file + ": ")) << e;

  s = pki.server();
  s.key_file = pki.file("garbage.pem");
  e = create_error(s);
  EXPECT_TRUE(contains(e, "key file " + s.key_file)) << e;

  s = pki.server();
  s.key_file = pki.file("alice.key");
  e = create_error(s);
  EXPECT_TRUE(contains(e, "does not match")) << e;

  s = pki.server();
  s.key_file = "";
  e = create_error(s);
  EXPECT_TRUE(contains(e, "key file not set")) << e;

  s = pki.server();
  s.ca_file = pki.file("missing_ca.pem");
  e = create_error(s);
  EXPECT_TRUE(contains(e, "CA file " + s.ca_file)) << e;

  s = pki.server();
  s.ca_file = pki.file("garbage.pem");
  e = create_error(s);
  EXPECT_TRUE(contains(e, "CA file " + s.ca_file + ": ")) << e;

  s = pki.server();
  s.min_version = "1.1";
  EXPECT_TRUE(contains(create_error(s), "min_version"));

  s = pki.server();
  s.ciphers = "NO-SUCH-CIPHER";
  EXPECT_TRUE(contains(create_error(s), "ciphers \"NO-SUCH-CIPHER\""));

  s = pki.server();
  s.ciphersuites = "TLS_NOPE";
  EXPECT_TRUE(contains(create_error(s), "ciphersuites \"TLS_NOPE\""));

  s = pki.server();
  s.require_client_cert = true;
  EXPECT_TRUE(contains(create_error(s), "ca_file"));

  s = with_ca(pki.server());
  s.username_from_cert = "subject";
  EXPECT_TRUE(contains(create_error(s), "username_from_cert"));

  // And good settings with every option.
  s = with_ca(pki.server(), true);
  s.min_version = "1.3";
  s.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  s.ciphersuites = "TLS_AES_128_GCM_SHA256";
  s.username_from_cert = "cn";
  EXPECT_NO_THROW(TlsContext::create(s));
}

}  // namespace
}  // namespace starling::net
