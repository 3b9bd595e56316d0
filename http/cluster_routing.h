// Which node a request must go to, when it names tables: the tables' owner, or an error when
// they live on two nodes (transactions and relations do not span nodes: API.md, Cluster).
//
// Thread-safety: a pure function of the current version and the cluster's directory.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/cluster.h"
#include "actors/runtime.h"
#include "http/message.h"

namespace tickdb {

// "" when every table is here (or unknown: the answer is then this node's 404), the other
// node's name when all live there; invalid_argument naming the nodes when they are spread.
// `what` names the request in the message ("db.transaction").
Result<std::string> owner_of_tables(const Cluster& c, const Runtime& rt,
                                    const std::vector<std::string>& tables,
                                    const std::string& what);

// The tables one RPC call names (its "table", the ops of a db.transaction, both tables of a
// db.create_relation); none for db.create_table (its table is yet to be).
std::vector<std::string> call_tables(const std::string& method, const nlohmann::json& params);

// The tables a request names: /table/{name}... or the calls of a /rpc body. What a node asked
// by a peer checks it still has.
std::vector<std::string> tables_named(const HttpRequest& req);

// A node asked by a peer for a table it does not have says so in this header (the table's
// name) beside its own answer (404): the forwarder refreshes its directory and retries once.
inline constexpr const char* kNotOwnerHeader = "X-Tickdb-Not-Owner";
bool not_owner_reply(const ForwardReply& r);

// A request as it travels to its owner (the client's own kStreamHeader dropped), and back.
ForwardRequest forward_request_of(const HttpRequest& req);
HttpRequest request_of(ForwardRequest f);

// Cluster::forward's batching on HTTP I/O threads: the calls one round of a thread forwards
// leave together, after the round (at once on any other thread).
const Cluster::Defer& after_this_round();

}  // namespace tickdb
