#include "actors/txn_actor.h"

namespace tickdb {

namespace {

// Tries of one batch before its calls fail with `conflict`. With the tables held from the
// second try on, only a table first touched on a later try can still conflict.
constexpr int kMaxTries = 16;

struct TxnState {
  Database* db = nullptr;
  TableDirectory* dir = nullptr;
  std::vector<PendingCall> batch;
  bool flush_queued = false;

  void hold(const std::vector<table_actor>& actors) {
    if (actors.empty()) return;
    auto latch = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(actors.size()));
    for (const auto& a : actors) post(a, hold_atom::value, latch);
    latch->wait();  // table actors never wait for the executor: this returns
  }

  void flush() {
    if (batch.empty()) return;
    std::vector<table_actor> held;
    for (int tries = 1;; ++tries) {
      TouchSet touched;
      if (run_batch(*db, batch, BatchMode::chained, touched)) break;
      db->count_conflict();
      if (tries == kMaxTries) {
        for (auto& p : batch)
          p.result = CallResult::fail(make_error(
              Errc::conflict, "could not commit after " + std::to_string(kMaxTries) + " tries: concurrent writes"));
        break;
      }
      std::vector<table_actor> more;
      for (auto& a : dir->find(touched))
        if (std::find(held.begin(), held.end(), a) == held.end()) more.push_back(a);
      hold(more);
      held.insert(held.end(), more.begin(), more.end());
    }
    for (const auto& a : held) post(a, release_atom::value);
    for (auto& p : batch)
      if (p.req.reply) p.req.reply->send(std::move(p.result));
    batch.clear();
  }
};

txn_actor::behavior_type txn_actor_impl(txn_actor::stateful_pointer<TxnState> self, Database* db,
                                        TableDirectory* dir) {
  self->state.db = db;
  self->state.dir = dir;
  return {
      [=](call_atom, CallRequest& req) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        s.batch.push_back(PendingCall{std::move(req), {}});
        if (!s.flush_queued) {
          s.flush_queued = true;
          TICKDB_MAILBOX_SEND(self->id());
          self->send(self, flush_atom::value);
        }
      },
      [=](flush_atom) {
        TICKDB_MAILBOX_RECEIVE(self);
        self->state.flush_queued = false;
        self->state.flush();
      },
      [=](stop_atom) {
        TICKDB_MAILBOX_RECEIVE(self);
        self->state.flush();
        self->quit();
      },
  };
}

}  // namespace

txn_actor spawn_txn_actor(caf::actor_system& sys, Database& db, TableDirectory& dir) {
  return sys.spawn<caf::detached>(txn_actor_impl, &db, &dir);
}

}  // namespace tickdb
