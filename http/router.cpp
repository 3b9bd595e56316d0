#include "http/router.h"

#include "actors/persistence.h"
#include "http/node_figures.h"

namespace tickdb {

using nlohmann::json;

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse error_response(const Error& e) {
  HttpResponse r;
  r.status = errc_http_status(e.code);
  r.body = json_text(json{{"error", {{"code", errc_name(e.code)}, {"message", e.message}}}});
  return r;
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse value_response(int status, json v) {
  HttpResponse r;
  r.status = status;
  r.value = std::move(v);
  return r;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

Router::Router(Runtime& rt, const Config& cfg)
    : rt_(&rt),
      cfg_(cfg),
      started_(std::chrono::steady_clock::now()),
      rpc_(rt),
      idempotency_(cfg.cluster_idempotency_ttl_s, cfg.cluster_idempotency_max_keys),
      hub_(std::make_unique<SubscriptionHub>(rt, cfg_)) {
  add_operation_routes();
  add_schema_routes();
  add_record_routes();
  figures_ = std::make_unique<RequestFigures>(table_.names().size(), cfg.http_threads);
  locator_ = [this](std::string_view table) -> std::optional<std::string> {
    Cluster* c = cluster_.load(std::memory_order_acquire);
    auto o = c ? c->owner(table) : std::nullopt;
    return o ? std::optional<std::string>(o->node) : std::nullopt;
  };
}

Router::~Router() {
  // The registry outlives this router: its procedures must not ask a locator that is gone.
  if (cluster_.load(std::memory_order_acquire)) rt_->registry().set_table_locator(nullptr);
}

void Router::call(std::string_view method, json params, int ok_status, Done done) {
  // A table created or dropped here: the peers learn it at once.
  Cluster* announce = method == "db.create_table" || method == "db.drop_table"
                          ? cluster_.load(std::memory_order_acquire)
                          : nullptr;
  rt_->call_async(method, std::move(params),
                  [done = std::move(done), ok_status, announce](Result<json> r) {
                    if (!r.is_ok()) return done(error_response(r.error()));
                    if (announce) announce->announce();
                    // Encoded by the I/O thread that writes it, not here (this may be the log's
                    // thread).
                    done(ok_status == 204 ? json_response(204, {})
                                          : value_response(ok_status, std::move(r).value()));
                  });
}

void Router::write(Runtime::RecordWrite w, int ok_status, Done done) {
  rt_->write_async(std::move(w), [done = std::move(done), ok_status](Result<json> r) {
    if (!r.is_ok()) return done(error_response(r.error()));
    done(ok_status == 204 ? json_response(204, {})
                          : value_response(ok_status, std::move(r).value()));
  });
}

RouteId Router::handle(HttpRequest req, Done done) {
  if (baseline_.load(std::memory_order_relaxed)) {
    done(json_response(200, "{}"));
    return kRouteBaseline;
  }
  auto target = parse_target(req.target);
  if (!target) {
    done(error_response(target.error()));
    return kRouteInvalid;
  }
  auto m = table_.match(req.method, target->segments);
  if (!m.route) {
    if (!m.allow.empty()) {
      HttpResponse r = error_response(make_error(
          Errc::method_not_allowed,
          "method " + req.method.substr(0, 16) + " is not allowed here; allowed: " + m.allow));
      r.allow = std::move(m.allow);
      done(std::move(r));
      return kRouteMethodNotAllowed;
    }
    const std::string_view path = std::string_view(req.target).substr(0, req.target.find('?'));
    done(error_response(make_error(Errc::not_found, "no route " + req.method.substr(0, 16) + " " +
                                                        std::string(path.substr(0, 200)))));
    return kRouteNotFound;
  }
  const HttpRoute& route = *m.route;
  if (!cfg_.http_auth_token.empty() && route.pattern_text != "/health" &&
      !equal_constant_time(req.authorization, "Bearer " + cfg_.http_auth_token)) {
    done(error_response(
        make_error(Errc::unauthorized, "this node needs 'Authorization: Bearer <token>'")));
    return route.id;
  }
  // A table of another node: its owner answers (the idempotency key travels with it).
  if (cluster_.load(std::memory_order_acquire) && req.header("x-tickdb-forwarded").empty()) {
    if (auto owner = remote_owner(route, m.params, req); !owner.empty()) {
      // (An event stream's GET is relayed by the session before it is routed; a HEAD of one
      // comes here and gets the owner's head.)
      const bool changes_tables =
          (route.method == "POST" && route.pattern_text == "/table") ||
          (route.method == "DELETE" && route.pattern_text == "/table/{name}");
      forward_to(owner, req, std::move(done), changes_tables);
      return route.id;
    }
  }
  // A write with an Idempotency-Key runs once; its repeats get its first answer.
  const bool write = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                     req.method == "DELETE";
  // After a restart the answers are gone, but not what the write did: its calls take their
  // keys from the scope and are answered by the runtime's IdempotencyLedger.
  std::optional<IdempotencyScope> scope;
  if (const auto key = req.header("idempotency-key"); write && !key.empty()) {
    if (auto st = IdempotencyCache::check_key(key); !st) {
      done(error_response(st.error()));
      return route.id;
    }
    std::string k(key);
    const std::uint64_t fingerprint = request_fingerprint(req);
    if (idempotency_.begin(k, fingerprint, done)) return route.id;
    auto replayed = std::make_shared<std::atomic<bool>>(false);
    scope.emplace(k, fingerprint, replayed);
    done = [this, k = std::move(k), inner = std::move(done), replayed](HttpResponse r) {
      idempotency_.finish(k, r);  // the repeats after this one say they are replayed
      if (replayed->load(std::memory_order_relaxed))
        r.headers.emplace_back("Idempotent-Replayed", "true");
      inner(std::move(r));
    };
  }
  try {
    route.handler(req, m.params, target->query, done);
  } catch (const std::exception& e) {
    // A bug: answer 500 and keep the node running (unless the handler already passed `done`
    // on, which then answers).
    if (done)
      done(error_response(make_error(Errc::internal, std::string("internal error: ") + e.what())));
  }
  return route.id;
}

std::string Router::metrics_text() const {
  return render_prometheus(collect());
}
json Router::stats_json(std::size_t tick_window) const {
  return render_json(collect(tick_window));
}

NodeFigures Router::collect(std::size_t tick_window) const {
  NodeFigures f;
  f.node = cfg_.node_name;
  f.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  auto v = rt_->current();
  f.version = v->version();
  f.tick = rt_->tick_stats(tick_window);
  f.commits = rt_->commit_stats();
  for (const auto& [name, t] : v->tables()) f.tables.push_back({name, t->count(), t->data_bytes()});
  f.rpc_fast_answered = rpc_.fast_transactions();
  f.rpc_fast_fell_back = rpc_.fast_fallbacks();
  if (persistence_) f.storage = persistence_->figures();
  f.idempotency = idempotency_.figures();
  f.subscriptions = hub_->figures();
  if (Cluster* c = cluster_.load(std::memory_order_acquire)) {
    f.peers = c->figures();
    f.relayed_streams = c->relayed_streams();
    f.served_streams = c->served_streams();
  }
  f.directory_retries = forward_retries_.load(std::memory_order_relaxed) + rpc_.retried();
  f.route_names = table_.names();
  f.requests = figures_->merged();
  return f;
}

}  // namespace tickdb
