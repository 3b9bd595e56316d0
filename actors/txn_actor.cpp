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
  std::vector<table_actor> release_after;  // table actors that handed their batch to this one
  bool flush_queued = false;

  // Holds `actors` and waits until each holds (or is gone): table actors never wait for the
  // executor, so this returns.
  static void hold(const std::vector<table_actor>& actors) {
    if (actors.empty()) return;
    auto latch = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(actors.size()));
    for (const auto& a : actors) post(a, hold_atom::value, std::make_shared<HoldTicket>(latch));
    latch->wait();
  }

  // Releases every held actor however the batch ends.
  struct Holds {
    std::vector<table_actor> held;
    ~Holds() {
      for (const auto& a : held) post(a, release_atom::value);
    }
  };

  void run(Holds& holds, std::uint64_t& ticket) {
    for (int tries = 1;; ++tries) {
      TouchSet touched;
      if (run_batch(*db, batch, BatchMode::chained, touched, ticket)) return;
      db->count_conflict();
      if (tries == kMaxTries) {
        for (auto& p : batch)
          p.result = Result<json>(make_error(
              Errc::conflict,
              "could not commit after " + std::to_string(kMaxTries) + " tries: concurrent writes"));
        return;
      }
      std::vector<table_actor> more;
      for (auto& a : dir->find(touched))
        if (std::find(holds.held.begin(), holds.held.end(), a) == holds.held.end())
          more.push_back(a);
      hold(more);
      holds.held.insert(holds.held.end(), more.begin(), more.end());
    }
  }

  void flush() {
    if (!batch.empty()) {
      Holds holds;
      std::uint64_t ticket = 0;
      try {
        run(holds, ticket);
      } catch (const std::exception& e) {
        // Out of memory publishing, most likely: nothing was published.
        for (auto& p : batch)
          p.result = Result<json>(make_error(Errc::resource_exhausted, e.what()));
      }
      db->answer(batch, ticket);
      batch.clear();
    }
    // Handed-over batches are answered: their table actors may go on.
    for (const auto& a : release_after) post(a, release_atom::value);
    release_after.clear();
  }
};

txn_actor::behavior_type txn_actor_impl(txn_actor::stateful_pointer<TxnState> self, Database* db,
                                        TableDirectory* dir) {
  self->state.db = db;
  self->state.dir = dir;
  auto queue_flush = [self] {
    auto& s = self->state;
    if (s.flush_queued) return;
    s.flush_queued = true;
    TICKDB_MAILBOX_SEND(self->id());
    self->send(self, flush_atom::value);
  };
  return {
      [=](call_atom, CallRequest& req) {
        TICKDB_MAILBOX_RECEIVE(self);
        self->state.batch.push_back(PendingCall{std::move(req), json()});
        queue_flush();
      },
      [=](handoff_atom, Handoff& h, table_actor& from) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        for (auto& c : h.calls) s.batch.push_back(PendingCall{std::move(c), json()});
        s.release_after.push_back(std::move(from));
        queue_flush();
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
  auto a = sys.spawn<caf::detached>(txn_actor_impl, &db, &dir);
  dir.set_executor(a);
  return a;
}

}  // namespace tickdb
