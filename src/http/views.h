// Read-only views of the broker and the kick: GET /api/v1/clients, /clients/{id},
// /subscriptions, /retained, /stats and DELETE /api/v1/clients/{id}.
#pragma once

#include <cstddef>
#include <string>

#include "broker/broker.h"
#include "http/parser/url.h"
#include "http/response.h"

namespace starling::http {

Response list_clients(broker::Broker& broker, const QueryParams& query);
Response show_client(broker::Broker& broker, const std::string& client_id);
Response kick_client(broker::Broker& broker, const std::string& client_id);
Response list_subscriptions(broker::Broker& broker, const QueryParams& query);
Response list_retained(broker::Broker& broker, const QueryParams& query);
Response stats(broker::Broker& broker, size_t http_connections);
// GET /api/v1/bridges[/<name>]: the bridges to other MQTT brokers (404 for an unknown name).
Response show_bridges(broker::Broker& broker, const std::string& name);
// GET /api/v1/cluster: the nodes as this one sees them (404 without [cluster]).
Response show_cluster(broker::Broker& broker);
// DELETE /api/v1/cluster/nodes/<id>: retires a node that is gone for good.
Response retire_node(broker::Broker& broker, const std::string& node_id);
// GET /api/v1/cluster/routes?node=ID: the filters a node has subscribers on, paged.
Response list_routes(broker::Broker& broker, const QueryParams& query);

}  // namespace starling::http
