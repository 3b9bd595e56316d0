#include "actors/database.h"

namespace tickdb {

bool Database::publish(const std::shared_ptr<const DbVersion>& base, const std::shared_ptr<const DbVersion>& mine,
                       const TouchSet& touched) {
  if (mine == base) return true;  // nothing changed
  std::shared_ptr<const DbVersion> expected = base;
  std::shared_ptr<const DbVersion> candidate = mine;
  bool rebased = false;
  while (!cell_.publish_if(expected.get(), candidate)) {
    // `expected` is held, so its address cannot be reused by a newer version (no ABA).
    expected = cell_.load();
    auto r = DbVersion::rebase(*base, *mine, *expected, touched);
    if (!r) return false;
    candidate = std::move(*r);
    rebased = true;
  }
  versions_.fetch_add(1, std::memory_order_relaxed);
  if (rebased) rebases_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Database::Counters Database::counters() const {
  Counters c;
  c.versions = versions_.load(std::memory_order_relaxed);
  c.rebases = rebases_.load(std::memory_order_relaxed);
  c.conflicts = conflicts_.load(std::memory_order_relaxed);
  c.calls = calls_.load(std::memory_order_relaxed);
  c.handoffs = handoffs_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace tickdb

namespace tickdb {

bool run_batch(Database& db, std::vector<PendingCall>& batch, BatchMode mode, TouchSet& touched) {
  const std::shared_ptr<const DbVersion> base = db.current();
  std::shared_ptr<const DbVersion> head = base;
  touched = TouchSet{};
  if (mode == BatchMode::shared) {
    // A call that leaves the transaction poisoned (it threw, or memory ran out half-way)
    // fails alone: the batch runs again over a fresh transaction without it.
    std::vector<bool> out(batch.size(), false);
    for (bool again = true; again;) {
      again = false;
      Transaction txn(base);
      for (std::size_t i = 0; i < batch.size() && !again; ++i) {
        if (out[i]) continue;
        auto& p = batch[i];
        CallContext ctx(txn, db.registry(), db.runner());
        ctx.set_tick(p.req.tick, p.req.tick_dt);
        p.result = invoke(*p.req.callable, ctx, p.req.params);
        if (txn.poisoned()) {
          if (p.result.is_ok()) p.result = CallResult::fail(make_error(Errc::internal, "the call left its write half done"));
          out[i] = true;
          again = true;
        }
      }
      if (again) continue;
      touched = txn.touched();
      auto v = txn.commit();
      if (!v) {
        for (auto& p : batch) p.result = CallResult::fail(v.error());
        return true;
      }
      head = *v;
    }
  } else {
    for (auto& p : batch) {
      Transaction txn(head);
      CallContext ctx(txn, db.registry(), db.runner());
      ctx.set_tick(p.req.tick, p.req.tick_dt);
      p.result = invoke(*p.req.callable, ctx, p.req.params);
      // A failed call read what made it fail: it is part of what must not change under us.
      touched.merge(txn.touched());
      if (!p.result.is_ok()) continue;
      auto v = txn.commit();
      if (!v) {
        p.result = CallResult::fail(v.error());
        continue;
      }
      head = *v;
    }
  }
  if (!db.publish(base, head, touched)) return false;
  db.count_calls(batch.size());
  return true;
}

}  // namespace tickdb
