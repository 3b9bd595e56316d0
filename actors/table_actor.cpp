#include "actors/table_actor.h"

namespace tickdb {

namespace {

// More writes than this in one batch are committed without waiting for the flush message, so
// a flood of writes is answered in bounded slices.
constexpr std::size_t kMaxBatch = 4096;

struct TableState {
  Database* db = nullptr;
  std::vector<PendingCall> batch;
  bool flush_queued = false;
  int held = 0;

  void flush() {
    if (batch.empty()) return;
    TouchSet touched;
    while (!run_batch(*db, batch, BatchMode::shared, touched)) db->count_conflict();
    for (auto& p : batch)
      if (p.req.reply) p.req.reply->send(std::move(p.result));
    batch.clear();
  }
};

table_actor::behavior_type table_actor_impl(table_actor::stateful_pointer<TableState> self, Database* db) {
  self->state.db = db;
  return {
      [=](call_atom, CallRequest& req) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        s.batch.push_back(PendingCall{std::move(req), {}});
        if (s.held) return;
        if (s.batch.size() >= kMaxBatch) {
          s.flush();
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
        if (!s.held) s.flush();
      },
      [=](hold_atom, HoldLatch& latch) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        s.flush();
        ++s.held;
        latch->count_down();
      },
      [=](release_atom) {
        TICKDB_MAILBOX_RECEIVE(self);
        auto& s = self->state;
        if (s.held > 0 && --s.held == 0) s.flush();
      },
      [=](stop_atom) {
        TICKDB_MAILBOX_RECEIVE(self);
        self->state.held = 0;
        self->state.flush();
        self->quit();
      },
  };
}

}  // namespace

table_actor spawn_table_actor(caf::actor_system& sys, Database& db) {
  return sys.spawn(table_actor_impl, &db);
}

table_actor TableDirectory::get(std::string_view table) {
  std::lock_guard lock(mu_);
  auto it = actors_.find(table);
  if (it != actors_.end()) return it->second;
  auto a = spawn_table_actor(*sys_, *db_);
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

std::size_t TableDirectory::size() const {
  std::lock_guard lock(mu_);
  return actors_.size();
}

}  // namespace tickdb
