// Fuzz target, differential: the JSON-RPC dispatcher (`POST /rpc`, http/rpc_endpoint.h), its
// fast db.transaction path (http/fast_txn.h) against the general path.
//
// Input: the body of POST /rpc. Every answer is 200 or 204 and holds JSON-RPC 2.0 responses
// (one object, or an array of them): "jsonrpc": "2.0", an "id", and exactly one of "result"
// and "error" (with an integer code). A body that is one call object is also sent wrapped in
// a batch of one, over the same fresh database: a batch never takes the fast path, so the
// answers must be the same (the batch's one element is the single answer).
#include "tests/fuzz/fuzz_node.h"

using namespace tickdb;

namespace {

void check_response(const json& r, const std::string& body) {
  TICKDB_FUZZ_CHECK(r.is_object() && r.value("jsonrpc", "") == "2.0" && r.contains("id"),
                    r.dump() + " for " + body);
  TICKDB_FUZZ_CHECK(r.contains("result") != r.contains("error"), r.dump());
  if (r.contains("error"))
    TICKDB_FUZZ_CHECK(r["error"].is_object() && r["error"]["code"].is_number_integer() &&
                          r["error"]["message"].is_string(),
                      r.dump());
}

// The answer's JSON (null for 204).
json rpc(const std::string& body) {
  HttpResponse r = fuzz::answer(HttpRequest{"POST", "/rpc", body, "", {}});
  TICKDB_FUZZ_CHECK(r.status == 200 || r.status == 204,
                    std::to_string(r.status) + " " + r.body.substr(0, 200));
  if (r.status == 204) return nullptr;
  auto j = parse_json(r.body, 1000);
  TICKDB_FUZZ_CHECK(j.is_ok(), r.body.substr(0, 200));
  if (j->is_array()) {
    TICKDB_FUZZ_CHECK(!j->empty(), "an empty batch answer");
    for (const auto& e : *j) check_response(e, body);
  } else {
    check_response(*j, body);
  }
  return *j;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::node();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const json single = rpc(body);
  fuzz::reset();
  auto parsed = parse_json(body);
  if (parsed.is_ok() && parsed->is_object()) {
    const json batch = rpc("[" + body + "]");
    fuzz::reset();
    if (single.is_null()) {
      TICKDB_FUZZ_CHECK(batch.is_null(), "a notification answered in a batch: " + batch.dump());
    } else {
      TICKDB_FUZZ_CHECK(batch.is_array() && batch.size() == 1,
                        "batch of one: " + batch.dump().substr(0, 300));
      TICKDB_FUZZ_CHECK(batch[0] == single, "single " + single.dump().substr(0, 300) +
                                                " but in a batch " +
                                                batch[0].dump().substr(0, 300));
    }
  }
  return 0;
}
