// Which node a request must go to, when it names tables: the tables' owner, or an error when
// they live on two nodes (transactions and relations do not span nodes: API.md, Cluster).
//
// Thread-safety: a pure function of the current version and the cluster's directory.
#pragma once

#include <string>
#include <vector>

#include "actors/cluster.h"
#include "actors/runtime.h"

namespace tickdb {

// "" when every table is here (or unknown: the answer is then this node's 404), the other
// node's name when all live there; invalid_argument naming the nodes when they are spread.
// `what` names the request in the message ("db.transaction").
Result<std::string> owner_of_tables(const Cluster& c, const Runtime& rt,
                                    const std::vector<std::string>& tables,
                                    const std::string& what);

}  // namespace tickdb
