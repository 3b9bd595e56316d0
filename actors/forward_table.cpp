#include "actors/forward_table.h"

#include <nlohmann/json.hpp>

namespace tickdb {

ForwardReply forward_error_reply(Errc code, const std::string& message) {
  ForwardReply r;
  r.status = errc_http_status(code);
  r.body = nlohmann::json{{"error", {{"code", errc_name(code)}, {"message", message}}}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (code == Errc::node_unavailable) r.headers = {"Retry-After", "1"};
  return r;
}

ForwardTable::~ForwardTable() {
  fail_all("the node stopped before the answer came");
}

std::uint64_t ForwardTable::open(const std::string& peer, const std::string& node,
                                 Clock::time_point deadline, Done done) {
  std::lock_guard lk(mu_);
  const std::uint64_t id = next_++;
  calls_.emplace(id, Call{peer, node, deadline, std::move(done), {}, 0});
  ++counts_[peer].forwarded;
  return id;
}

void ForwardTable::piece(std::uint64_t call, std::uint32_t n, bool last, ForwardReply part) {
  Done done;
  ForwardReply answer;
  {
    std::lock_guard lk(mu_);
    auto it = calls_.find(call);
    if (it == calls_.end()) return;
    Call& c = it->second;
    if (n != c.next_piece++) {
      answer = forward_error_reply(Errc::node_timeout,
                                   "the answer of node '" + c.node + "' came incomplete");
    } else {
      if (n == 0)
        c.reply = std::move(part);
      else
        c.reply.body += part.body;
      if (!last) return;
      answer = std::move(c.reply);
    }
    ++counts_[c.peer].answered[answer.status];
    done = std::move(c.done);
    calls_.erase(it);
  }
  if (done) done(std::move(answer));
}

template <class Pick, class Reply>
ForwardTable::Ended ForwardTable::take(Pick pick, Reply reply, int status, bool timeout) {
  Ended ended;
  std::lock_guard lk(mu_);
  for (auto it = calls_.begin(); it != calls_.end();) {
    if (!pick(it->second)) {
      ++it;
      continue;
    }
    if (status) {
      auto& pc = counts_[it->second.peer];
      ++pc.answered[status];
      if (timeout) ++pc.timeouts;
    }
    ended.emplace_back(std::move(it->second.done), reply(it->second));
    it = calls_.erase(it);
  }
  return ended;
}

void ForwardTable::give(Ended ended) {
  for (auto& [done, reply] : ended)
    if (done) done(std::move(reply));
}

void ForwardTable::expire(Clock::time_point now, std::int64_t timeout_ms) {
  give(take([now](const Call& c) { return c.deadline <= now; },
            [timeout_ms](const Call& c) {
              return forward_error_reply(
                  Errc::node_timeout, "node '" + c.node +
                                          "' did not answer within cluster.request_timeout_ms (" +
                                          std::to_string(timeout_ms) + "); the outcome is unknown");
            },
            504, true));
}

void ForwardTable::fail_peer(const std::string& peer, const std::string& why) {
  give(take([&peer](const Call& c) { return c.peer == peer; },
            [&why](const Call& c) {
              return forward_error_reply(Errc::node_timeout,
                                         "node '" + c.node + "' went down (" + why +
                                             ") with the call in flight; the outcome is unknown");
            },
            504, true));
}

void ForwardTable::fail_all(const std::string& why) {
  give(take([](const Call&) { return true; },
            [&why](const Call&) { return forward_error_reply(Errc::node_unavailable, why); }, 0,
            false));
}

void ForwardTable::count_unavailable(const std::string& peer) {
  std::lock_guard lk(mu_);
  auto& pc = counts_[peer];
  ++pc.unavailable;
  ++pc.answered[503];
}

ForwardTable::Counts ForwardTable::counts(const std::string& peer) const {
  std::lock_guard lk(mu_);
  Counts out;
  auto it = counts_.find(peer);
  if (it == counts_.end()) return out;
  out.forwarded = it->second.forwarded;
  out.timeouts = it->second.timeouts;
  out.unavailable = it->second.unavailable;
  out.answered.assign(it->second.answered.begin(), it->second.answered.end());
  return out;
}

std::size_t ForwardTable::open_calls() const {
  std::lock_guard lk(mu_);
  return calls_.size();
}

}  // namespace tickdb
