// The HTTP API: routes a request to its handler after authorization. Handlers answer at once,
// or (a publish waiting for the store) later through a Responder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "http/parser/request_parser.h"
#include "http/parser/url.h"
#include "http/response.h"

namespace starling::http {

class Connection;
class Server;
struct LoopSite;

// Completes a deferred request from any thread (the store's writer, typically): the response
// is posted to the connection's loop and dropped there if the connection has gone meanwhile.
class Responder {
 public:
  Responder(LoopSite* site, uint64_t token, uint64_t seq) : site_(site), token_(token), seq_(seq) {}
  void operator()(Response response) const;

 private:
  LoopSite* site_;
  uint64_t token_;
  uint64_t seq_;
};

struct RequestContext {
  Connection& connection;
  const config::Config& settings;  // in force on this loop
  uint64_t seq;                    // the request's place in the connection's pipeline
  // For a handler that answers later: it returns nullopt and calls the responder once.
  Responder defer() const;
};

class Api {
 public:
  explicit Api(Server& server) : server_(server) {}
  std::optional<Response> handle(const Request& request, const RequestContext& ctx);

 private:
  Response readyz();
  Response whoami(const std::vector<std::string>& scopes);
  Response metrics();

  Server& server_;
};

}  // namespace starling::http
