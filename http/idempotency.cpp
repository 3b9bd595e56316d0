#include "http/idempotency.h"

#include <xxhash.h>

#include <cstdio>

namespace tickdb {

IdempotencyCache::IdempotencyCache(double ttl_s, std::uint64_t max_keys)
    : ttl_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ttl_s))),
      max_keys_(max_keys ? max_keys : 1) {}

Status IdempotencyCache::check_key(std::string_view key) {
  if (key.empty() || key.size() > 64)
    return make_error(Errc::invalid_argument, "Idempotency-Key must be 1 to 64 characters");
  for (char c : key)
    if (c < 0x21 || c > 0x7e)
      return make_error(Errc::invalid_argument,
                        "Idempotency-Key must be printable ASCII without spaces");
  return {};
}

std::uint64_t request_fingerprint(const HttpRequest& req) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, req.method.data(), req.method.size());
  XXH3_64bits_update(st, "\n", 1);
  XXH3_64bits_update(st, req.target.data(), req.target.size());
  XXH3_64bits_update(st, "\n", 1);
  XXH3_64bits_update(st, req.body.data(), req.body.size());
  const std::uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

std::string forwarded_call_key(std::string_view key, std::size_t index) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(key.data(), key.size())));
  return "fwd-" + std::string(hex) + "-" + std::to_string(index);
}

void IdempotencyCache::expire(Clock::time_point now) {
  while (!order_.empty() && (order_.front().first <= now || entries_.size() > max_keys_)) {
    auto it = entries_.find(order_.front().second);
    // A key still running is kept (its repeats wait for it); it expires once answered.
    if (it != entries_.end() && it->second.expires == order_.front().first) {
      if (!it->second.done) break;
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

bool IdempotencyCache::begin(const std::string& key, std::uint64_t fingerprint, Done& done) {
  std::unique_lock lk(mu_);
  const auto now = Clock::now();
  expire(now);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    Entry e;
    e.fingerprint = fingerprint;
    e.expires = now + ttl_;
    entries_.emplace(key, std::move(e));
    order_.emplace_back(now + ttl_, key);
    return false;
  }
  Entry& e = it->second;
  if (e.fingerprint != fingerprint) {
    ++conflicts_;
    lk.unlock();
    done(error_response(
        make_error(Errc::conflict, "Idempotency-Key '" + key + "' was used with another request")));
    return true;
  }
  ++replayed_;
  if (!e.done) {
    e.waiting.push_back(std::move(done));
    return true;
  }
  HttpResponse r = e.answer;
  lk.unlock();
  done(std::move(r));
  return true;
}

void IdempotencyCache::finish(const std::string& key, const HttpResponse& answer) {
  std::vector<Done> waiting;
  HttpResponse replay;
  {
    std::lock_guard lk(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    waiting.swap(e.waiting);
    if (answer.status == 503 || answer.retry_runs) {
      entries_.erase(it);  // its place in order_ expires by itself
      replay = answer;
      replay.headers.clear();
    } else {
      e.done = true;
      e.answer = answer;
      if (e.answer.value) {  // kept as text: encoded once here, not per repeat
        e.answer.body = json_text(*e.answer.value);
        e.answer.value.reset();
      }
      e.answer.headers.emplace_back("Idempotent-Replayed", "true");
      replay = e.answer;
    }
  }
  for (auto& w : waiting) w(replay);
}

IdempotencyCache::Figures IdempotencyCache::figures() const {
  std::lock_guard lk(mu_);
  return {entries_.size(), replayed_, conflicts_};
}

}  // namespace tickdb
