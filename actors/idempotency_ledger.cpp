#include "actors/idempotency_ledger.h"

#include <chrono>

#include "core/json_codec.h"

namespace tickdb {

namespace {
thread_local IdempotencyScope* g_scope = nullptr;
}  // namespace

IdempotencyLedger::IdempotencyLedger(double ttl_s, std::uint64_t max_keys) {
  configure(ttl_s, max_keys);
}

void IdempotencyLedger::configure(double ttl_s, std::uint64_t max_keys) {
  std::lock_guard lk(mu_);
  ttl_ms_ = static_cast<std::uint64_t>(ttl_s * 1000.0);
  max_keys_ = max_keys ? max_keys : 1;
}

std::uint64_t IdempotencyLedger::now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void IdempotencyLedger::trim(std::uint64_t now) {
  while (!order_.empty()) {
    auto it = entries_.find(order_.front().second);
    const bool live = it != entries_.end() && it->second.unix_ms == order_.front().first;
    if (live && !expired(it->second, now) && entries_.size() <= max_keys_) break;
    if (live) entries_.erase(it);
    order_.pop_front();
  }
}

bool IdempotencyLedger::record(const std::string& key, Entry e) {
  const std::uint64_t now = now_ms();
  std::lock_guard lk(mu_);
  if (key.empty() || expired(e, now)) return false;
  order_.emplace_back(e.unix_ms, key);
  entries_[key] = std::move(e);
  trim(now);
  return true;
}

std::optional<IdempotencyLedger::Entry> IdempotencyLedger::find(const std::string& key) const {
  const std::uint64_t now = now_ms();
  std::lock_guard lk(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || expired(it->second, now)) return std::nullopt;
  return it->second;
}

std::vector<KeyRecord> IdempotencyLedger::through(std::uint64_t version) const {
  const std::uint64_t now = now_ms();
  std::vector<KeyRecord> out;
  std::lock_guard lk(mu_);
  for (const auto& [key, e] : entries_)
    if (e.version <= version && !expired(e, now))
      out.push_back({key, e.fingerprint, e.version, e.unix_ms,
                     e.result.dump(-1, ' ', false, json::error_handler_t::replace)});
  return out;
}

void IdempotencyLedger::forget_after(std::uint64_t version) {
  std::lock_guard lk(mu_);
  for (auto it = entries_.begin(); it != entries_.end();)
    it = it->second.version > version ? entries_.erase(it) : std::next(it);
}

std::size_t IdempotencyLedger::load(const std::vector<KeyRecord>& records) {
  std::size_t kept = 0;
  for (const auto& r : records) {
    auto result = parse_json(r.result);
    if (!result) continue;
    kept += record(r.key, {r.fingerprint, std::move(*result), r.version, r.unix_ms});
  }
  return kept;
}

std::size_t IdempotencyLedger::size() const {
  std::lock_guard lk(mu_);
  return entries_.size();
}

IdempotencyScope::IdempotencyScope(std::string key, std::uint64_t fingerprint,
                                   std::shared_ptr<std::atomic<bool>> replayed)
    : key_(std::move(key)),
      fingerprint_(fingerprint),
      replayed_(std::move(replayed)),
      outer_(g_scope) {
  g_scope = this;
}

IdempotencyScope::~IdempotencyScope() {
  g_scope = outer_;
}

CallKey IdempotencyScope::next_call() {
  IdempotencyScope* s = g_scope;
  if (!s) return {};
  const std::uint32_t n = s->calls_++;
  return {n == 0 ? s->key_ : s->key_ + "#" + std::to_string(n), s->fingerprint_, 0};
}

bool IdempotencyScope::active() {
  return g_scope != nullptr;
}

std::string IdempotencyScope::key() {
  return g_scope ? g_scope->key_ : std::string();
}

void IdempotencyScope::mark_replayed() {
  if (g_scope && g_scope->replayed_) g_scope->replayed_->store(true, std::memory_order_relaxed);
}

}  // namespace tickdb
