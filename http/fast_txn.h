// The fast path of the heaviest common request: a JSON-RPC call of `db.transaction` whose ops
// are all `db.insert`. The I/O thread reads the request text straight into packed record
// bytes (core/json_text.h: no JSON document), the executor inserts those bytes in one
// transaction, and the answer is written straight from the inserted records.
//
// It answers only what it understood completely. prepare_insert_transaction gives nullopt
// for anything else (another method, a batch, a notification, escapes in strings, a value
// record_from_json would refuse, a table that does not exist, ...), and the run reports
// `fallback` when an insert fails or a table's schema changed after the request was read: in
// both cases the router handles the request on the general path, which gives the canonical
// answer or error. Nothing is committed by a run that falls back.
//
// Thread-safety: a PreparedTxn belongs to one request.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "actors/procedures.h"
#include "core/json_text.h"

namespace tickdb {

struct PreparedTxn {
  json id;                  // the JSON-RPC id (a string or a number)
  std::string params_text;  // the call's params as sent (what the commit log records)
  struct Table {
    std::string name;
    std::shared_ptr<const TableSchema> schema;  // the schema the records were read with
  };
  struct Insert {
    std::uint32_t table;  // index into tables
    std::optional<std::uint64_t> id;
    std::size_t offset;  // into bytes
  };
  std::vector<Table> tables;
  std::vector<Insert> inserts;
  std::vector<std::byte> bytes;  // the records, packed one after the other
};

// The members of a JSON-RPC call besides its params, as the fast readers take them.
struct RpcEnvelope {
  json id;
  bool version = false, has_id = false, method = false;
  bool complete() const { return version && has_id && method; }
};
// Reads the member `key` when it is "jsonrpc" (must be "2.0"), "id" (a string or a number)
// or "method" (must be `method`): 1 when read, 0 when `key` is none of them, -1 when the
// value is not one the fast readers take (or given twice).
int read_envelope_member(JsonCursor& in, std::string_view key, std::string_view method,
                         RpcEnvelope& e);

// Reads `body` as one JSON-RPC db.transaction of db.insert ops against the tables of `db`.
std::optional<PreparedTxn> prepare_insert_transaction(std::string_view body, const DbVersion& db);

// What a run leaves behind for the answer. `out` holds the JSON-RPC response text once the
// call has succeeded; `fallback` says the run gave up and committed nothing.
struct FastTxnOutcome {
  std::string out;
  bool fallback = false;
};

// A serial callable (for Runtime::run_async) that inserts the prepared records in its
// transaction and writes the response into `outcome`. It may run more than once (optimistic
// retries); each run starts the answer afresh.
std::shared_ptr<const Callable> fast_txn_callable(std::shared_ptr<const PreparedTxn> txn,
                                                  std::shared_ptr<FastTxnOutcome> outcome);

// The same for a REST insert of one record (`POST /table/{name}/record`): `body` read straight
// into a record of `table`, logged as the db.insert call it stands for (params
// {"table", "values": <body as sent>}). nullopt for anything the reader does not take.
std::optional<PreparedTxn> prepare_record_insert(std::string_view table, std::string_view body,
                                                 const DbVersion& db);
// A table-route callable (Runtime::run_on_table_async) that inserts the one prepared record;
// `outcome->out` then holds the record's JSON (the REST answer). Gives up as
// fast_txn_callable does.
std::shared_ptr<const Callable> fast_insert_callable(std::shared_ptr<const PreparedTxn> txn,
                                                     std::shared_ptr<FastTxnOutcome> outcome);

}  // namespace tickdb
