// The node the HTTP-level fuzz targets talk to: one Runtime (no ticks, one worker) and one
// Router over the fixed database (fuzz_common.h), started once per process, never stopped
// (its threads outlive the fuzzing loop; nothing is leaked: the pointers stay reachable).
//
// Between inputs, reset() puts the fixed database back, so that what one input created
// (tables, types, records) cannot pile up or change what the next one sees. It publishes the
// fixed database's content under a new, higher version number: nothing else writes then
// (every answer of the input has come back), and the versions the subscription hub keeps still
// rise, as they always do.
//
// Thread-safety: the fuzzing thread only; the answers come back on the node's threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>

#include "http/router.h"
#include "tests/fuzz/fuzz_common.h"

namespace tickdb::fuzz {

struct Node {
  Runtime* rt = nullptr;
  Router* router = nullptr;
  Config cfg;
};

inline Node& node() {
  static Node n = [] {
    Node m;
    m.cfg.http_max_body_bytes = 1 << 20;
    RuntimeConfig rc;
    rc.start_ticks = false;
    rc.workers = 1;
    auto rt = Runtime::start(rc, fixed_db());
    if (!rt) fail("runtime: " + rt.message());
    m.rt = rt->release();
    m.router = new Router(*m.rt, m.cfg);
    return m;
  }();
  return n;
}

inline void reset() {
  Node& n = node();
  auto cur = n.rt->current();
  n.rt->versions().publish(DbVersion::with_version(fixed_db(), cur->version() + 1));
}

// Routes `req` and waits for its answer (at most 10 s: no answer by then is a bug). A JSON
// answer must be valid JSON.
inline HttpResponse answer(HttpRequest req) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<HttpResponse> res;
  };
  auto w = std::make_shared<Wait>();
  std::string what = req.method + " " + req.target.substr(0, 200);
  node().router->handle(std::move(req), [w](HttpResponse r) {
    std::lock_guard lk(w->mu);
    if (w->res) fail("answered twice");
    w->res = std::move(r);
    w->cv.notify_all();
  });
  std::unique_lock lk(w->mu);
  if (!w->cv.wait_for(lk, std::chrono::seconds(10), [&] { return w->res.has_value(); }))
    fail("no answer within 10 s: " + what);
  HttpResponse r = std::move(*w->res);
  if (r.value) r.body = json_text(*r.value);  // as the session encodes it
  TICKDB_FUZZ_CHECK(r.status >= 100 && r.status <= 599, what);
  if (r.content_type == "application/json" && !r.body.empty()) {
    auto j = parse_json(r.body, 1000);
    TICKDB_FUZZ_CHECK(j.is_ok(), what + " answered JSON that does not parse: " + j.message());
    if (r.status >= 400)
      TICKDB_FUZZ_CHECK(j->contains("error") && (*j)["error"].contains("code"),
                        what + ": an error answer without error.code: " + r.body.substr(0, 200));
  }
  return r;
}

}  // namespace tickdb::fuzz
