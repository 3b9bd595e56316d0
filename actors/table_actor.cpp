#include "actors/table_actor.h"

namespace tickdb {

namespace {

// More writes than this in one batch are committed without waiting for the flush message, so
// a flood of writes is answered in bounded slices.
constexpr std::size_t kMaxBatch = 4096;

struct TableState {
  Database* db = nullptr;
  int max_tries = 8;  // conflicts in a row before a batch goes to the executor
  txn_actor executor;
  std::vector<PendingCall> batch;
  bool flush_queued = false;
  int held = 0;

  void flush(table_actor::pointer self) {
    if (batch.empty()) return;
    std::uint64_t ticket = 0;
    try {
      TouchSet touched;
      for (int tries = 1; !run_batch(*db, batch, BatchMode::shared, touched, ticket); ++tries) {
        db->count_conflict();
        if (tries >= max_tries && executor) {
          // Keeps losing (its relation checks read a table that is written all the time):
          // the executor runs the batch holding what it touches; this actor waits until
          // then, so later writes of this table are still answered after these.
          Handoff h;
          for (auto& p : batch) h.calls.push_back(std::move(p.req));
          batch.clear();
          ++held;
          db->count_handoff();
          post(executor, handoff_atom::value, std::move(h), caf::actor_cast<table_actor>(self));
          return;
        }
      }
    } catch (const std::exception& e) {
      // Out of memory publishing, most likely: nothing was published.
      for (auto& p : batch) p.result = Result<json>(make_error(Errc::resource_exhausted, e.what()));
    }
    db->answer(batch, ticket);
    batch.clear();
  }
};

table_actor::behavior_type table_actor_impl(table_actor::stateful_pointer<TableState> self,
                                            Database* db, txn_actor executor, int max_tries) {
  self->state.db = db;
  self->state.max_tries = max_tries;
  self->state.executor = std::move(executor);
  return {
      [=](call_atom, CallRequest& req) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        s.batch.push_back(PendingCall{std::move(req), json()});
        if (s.held) return;
        if (s.batch.size() >= kMaxBatch) {
          s.flush(self);
        } else if (!s.flush_queued) {
          s.flush_queued = true;
          TICKDB_MAILBOX_SEND(self->id());
          self->send(self, flush_atom::value);
        }
      },
      [=](flush_atom) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        s.flush_queued = false;
        if (!s.held) s.flush(self);
      },
      [=](hold_atom, HoldLatch& ticket) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        // Already held (its batch handed to the executor): what waits here must stay behind.
        if (!s.held) s.flush(self);
        ++s.held;
        ticket->arrive();
      },
      [=](release_atom) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        if (s.held > 0 && --s.held == 0) s.flush(self);
      },
      [=](stop_atom) {
        TICKDB_MAILBOX_RECEIVE(self);
        self->state.held = 0;
        self->state.executor = nullptr;  // the executor has stopped already
        self->state.flush(self);
        self->quit();
      },
  };
}

}  // namespace

table_actor TableDirectory::get(std::string_view table) {
  std::lock_guard lock(mu_);
  auto it = actors_.find(table);
  if (it != actors_.end()) return it->second;
  auto a = sys_->spawn(table_actor_impl, db_, executor_,
                       max_tries_);  // callers hold Runtime's in-flight guard
  actors_.emplace(std::string(table), a);
  return a;
}

std::vector<table_actor> TableDirectory::find(const TouchSet& touched) const {
  if (touched.all) return all();
  std::lock_guard lock(mu_);
  std::vector<table_actor> out;
  for (const auto& name : touched.tables)
    if (auto it = actors_.find(name); it != actors_.end()) out.push_back(it->second);
  return out;
}

std::vector<table_actor> TableDirectory::all() const {
  std::lock_guard lock(mu_);
  std::vector<table_actor> out;
  for (const auto& [name, a] : actors_) out.push_back(a);
  return out;
}

void TableDirectory::clear() {
  std::lock_guard lock(mu_);
  actors_.clear();
  executor_ = nullptr;
}

std::size_t TableDirectory::size() const {
  std::lock_guard lock(mu_);
  return actors_.size();
}

}  // namespace tickdb
