#include "actors/database.h"

#include "core/commit_log.h"

namespace tickdb {

Database::Outcome Database::publish(const std::shared_ptr<const DbVersion>& base,
                                    const std::shared_ptr<const DbVersion>& mine,
                                    const TouchSet& touched, std::uint32_t calls,
                                    std::string_view calls_payload, std::uint64_t* ticket,
                                    Keyed* keyed) {
  if (ticket) *ticket = 0;
  if (mine == base) return Outcome::published;  // nothing changed
  CommitSink* sink = this->sink();
  if (sink && sink->refusing()) return Outcome::refused;
  std::unique_lock<std::mutex> lock(publish_mu_, std::defer_lock);
  if (sink || (keyed && !keyed->empty())) lock.lock();  // keys_through() waits for the ledger
  std::shared_ptr<const DbVersion> expected = base;
  std::shared_ptr<const DbVersion> candidate = mine;
  bool rebased = false;
  while (!cell_.publish_if(expected.get(), candidate)) {
    // `expected` is held, so its address cannot be reused by a newer version (no ABA).
    expected = cell_.load();
    auto r = DbVersion::rebase(*base, *mine, *expected, touched);
    if (!r) return Outcome::conflict;
    candidate = std::move(*r);
    rebased = true;
  }
  if (sink) {
    std::uint64_t t = sink->append(candidate, expected->version(), calls, calls_payload);
    if (t == 0) {
      // Refused (the log broke since the check above): take it back. Every publish with a
      // sink holds the lock, so `candidate` is still current.
      cell_.publish(expected);
      return Outcome::refused;
    }
    if (ticket) *ticket = t;
  }
  if (keyed)
    for (auto& [key, e] : *keyed) {
      e.version = candidate->version();
      ledger_.record(key, std::move(e));
    }
  versions_.fetch_add(1, std::memory_order_relaxed);
  if (!durable_reads())
    if (PublishListener* l = listener_.load(std::memory_order_acquire))
      l->published(candidate->version());
  if (rebased) rebases_.fetch_add(1, std::memory_order_relaxed);
  return Outcome::published;
}

std::shared_ptr<const DbVersion> Database::roll_back(const std::shared_ptr<const DbVersion>& to) {
  std::lock_guard lock(publish_mu_);
  auto back = DbVersion::with_version(to, cell_.load()->version() + 1);
  cell_.publish(back);
  ledger_.forget_after(to->version());
  versions_.fetch_add(1, std::memory_order_relaxed);
  if (!durable_reads())
    if (PublishListener* l = listener_.load(std::memory_order_acquire))
      l->published(back->version());
  return back;
}

std::vector<KeyRecord> Database::keys_through(std::uint64_t version) {
  // A barrier, not held while the entries are encoded: a publish holds the lock from its swap
  // until its keys are recorded, so every version up to `version` (already published when
  // the caller read it) has recorded its keys once the lock is free.
  { std::lock_guard lock(publish_mu_); }
  return ledger_.through(version);
}

void Database::set_durable_reads(bool on) {
  if (on) visible_.publish(cell_.load());
  durable_reads_.store(on, std::memory_order_release);
}

void Database::made_durable(const std::shared_ptr<const DbVersion>& v) {
  if (!v || !durable_reads()) return;
  // One writer thread calls this, in log order; a repair may hand an older version than one
  // already readable (never move back).
  if (v->version() <= visible_.load()->version()) return;
  visible_.publish(v);
  if (PublishListener* l = listener_.load(std::memory_order_acquire)) l->published(v->version());
}

void Database::answer(std::vector<PendingCall>& batch, std::uint64_t ticket) {
  CommitSink* sink = this->sink();
  if (sink && (ticket || durable_reads())) {
    CommitSink::Answers answers;
    answers.reserve(batch.size());
    for (auto& p : batch)
      if (p.req.reply) answers.emplace_back(std::move(p.req.reply), std::move(p.result));
    sink->answer(ticket, std::move(answers));
    return;
  }
  for (auto& p : batch)
    if (p.req.reply) p.req.reply->send(std::move(p.result));
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

namespace {
// The calls of a batch that committed, for the commit log (keyed ones with their keys).
std::uint32_t encode_committed(const std::vector<PendingCall>& batch, std::string& payload) {
  std::uint32_t n = 0;
  for (const auto& p : batch) {
    if (!p.result.is_ok()) continue;
    const Callable& c = *p.req.callable;
    const CallKey* key = p.req.key.key.empty() ? nullptr : &p.req.key;
    if (c.logged_params) {
      append_logged_call(payload, c.name, *c.logged_params, p.req.tick, p.req.tick_dt, key);
    } else {
      append_logged_call(payload, c.name,
                         p.req.params.dump(-1, ' ', false, json::error_handler_t::replace),
                         p.req.tick, p.req.tick_dt, key);
    }
    ++n;
  }
  return n;
}

// The keyed calls of a batch that committed, for the ledger; their commit time is set here.
Database::Keyed keyed_committed(std::vector<PendingCall>& batch) {
  Database::Keyed out;
  std::uint64_t now = 0;
  for (auto& p : batch) {
    if (!p.result.is_ok() || p.req.key.key.empty()) continue;
    if (!now) now = IdempotencyLedger::now_ms();
    p.req.key.unix_ms = now;
    out.emplace_back(p.req.key.key,
                     IdempotencyLedger::Entry{p.req.key.fingerprint, *p.result, 0, now});
  }
  return out;
}
}  // namespace

bool run_batch(Database& db, std::vector<PendingCall>& batch, BatchMode mode, TouchSet& touched,
               std::uint64_t& ticket) {
  ticket = 0;
  const std::shared_ptr<const DbVersion> base = db.current();
  std::shared_ptr<const DbVersion> head = base;
  touched = TouchSet{};
  if (mode == BatchMode::shared) {
    // A call that leaves the transaction poisoned (it threw, or memory ran out half-way) or
    // duplicates a unique key fails alone: the batch runs again over a fresh transaction
    // without it.
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
          if (p.result.is_ok())
            p.result =
                Result<json>(make_error(Errc::internal, "the call left its write half done"));
          out[i] = true;
          again = true;
        } else if (p.result.is_ok()) {
          // Each call is a write of its own: a unique key it duplicates fails it alone (at
          // commit it would fail the whole batch).
          if (Status u = txn.check_unique(); !u) {
            p.result = Result<json>(u.error());
            out[i] = true;
            again = true;
          }
        }
      }
      if (again) continue;
      touched = txn.touched();
      auto v = txn.commit();
      if (!v) {
        for (auto& p : batch) p.result = Result<json>(v.error());
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
        p.result = Result<json>(v.error());
        continue;
      }
      head = *v;
    }
  }
  std::string payload;
  std::uint32_t calls = 0;
  Database::Keyed keyed;
  if (head != base) keyed = keyed_committed(batch);
  if (head != base && db.sink()) calls = encode_committed(batch, payload);
  switch (db.publish(base, head, touched, calls, payload, &ticket, &keyed)) {
    case Database::Outcome::conflict:
      return false;
    case Database::Outcome::refused: {
      // The log refuses writes: the calls that would have committed fail with its error.
      const Error why = db.sink()->refusal();
      for (auto& p : batch)
        if (p.result.is_ok()) p.result = Result<json>(why);
      break;
    }
    case Database::Outcome::published:
      break;
  }
  db.count_calls(batch.size());
  return true;
}

}  // namespace tickdb
