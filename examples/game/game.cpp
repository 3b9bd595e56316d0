// examples/game: a procedure module that is a small game world.
//
// Tables (made by `setup`): players (name str(16), score u64) and entities (owner u64 ->
// players, on_delete cascade; pos vec3; vel vec3; hp i32) with vec3 = {x, y, z: f32}.
// Procedures:
//   setup {}                                  creates the type, the tables and the relation
//   spawn {owner, n}                          n entities of a player, spread over the world
//   step {dt}                                 pos += vel*dt, bouncing off the world's bounds
//                                             (a parallel update; meant as a tick procedure)
//   damage_area {center, radius, amount}      hp -= amount within the sphere; entities at
//                                             hp <= 0 are deleted (parallel)
//   leaderboard {k}                           the k best players by score (a parallel reduction)
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "actors/module_api.h"

namespace {

using namespace tickdb;

constexpr float kBound = 1000.0f;  // the world is [-kBound, kBound] on each axis
constexpr std::uint64_t kMaxSpawn = 10'000'000;

struct Vec3 {
  float x, y, z;
};

Vec3 load_vec3(const std::byte* p) {
  Vec3 v;
  std::memcpy(&v, p, sizeof v);  // packed, unaligned: memcpy
  return v;
}
void store_vec3(std::byte* p, const Vec3& v) { std::memcpy(p, &v, sizeof v); }

std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
float unit(std::uint64_t& s) {  // uniform in [-1, 1)
  return static_cast<float>(splitmix64(s) >> 40) / static_cast<float>(1ULL << 23) - 1.0f;
}

// The entities' field offsets, resolved once per call.
// The procedures write at these offsets from worker threads: the types must be exactly the
// ones `setup` makes, or a user's own `entities` table would be written out of bounds.
struct EntityLayout {
  std::uint32_t owner, pos, vel, hp, size;
  static Result<EntityLayout> of(const TableSchema& s) {
    EntityLayout l{};
    auto field = [&](const std::string& name, Kind kind, std::uint32_t size, std::uint32_t* out) -> Status {
      auto loc = s.locate(name);
      if (!loc) return make_error(Errc::invalid_argument, "table 'entities' has no field '" + name + "'");
      if (loc->type.kind != kind || loc->type.size != size)
        return make_error(Errc::invalid_argument, "field '" + name + "' of table 'entities' is " + loc->type.name() +
                                                      ", the game needs the type setup makes");
      if (out) *out = loc->offset;
      return {};
    };
    TICKDB_TRY(field("owner", Kind::U64, 8, &l.owner));
    TICKDB_TRY(field("hp", Kind::I32, 4, &l.hp));
    for (auto [v, out] : {std::pair<std::string, std::uint32_t*>{"pos", &l.pos}, {"vel", &l.vel}}) {
      auto loc = s.locate(v);
      if (!loc || loc->type.size != 12) return make_error(Errc::invalid_argument, "field '" + v + "' of table 'entities' must be a vec3");
      *out = loc->offset;
      std::uint32_t at = 0;
      for (const char* axis : {".x", ".y", ".z"}) {
        std::uint32_t off = 0;
        TICKDB_TRY(field(v + axis, Kind::F32, 4, &off));
        if (off != *out + at) return make_error(Errc::invalid_argument, "field '" + v + "' of table 'entities' must be a vec3 {x, y, z}");
        at += 4;
      }
    }
    l.size = s.record_size();
    return l;
  }
};

Result<json> setup(CallContext& ctx, const json& p) {
  TICKDB_TRY(check_params(p, {}, "setup"));
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  Transaction& t = **tx;
  if (t.table("players") && t.table("entities")) return json{{"created", false}};
  if (!t.types().find("vec3")) {
    auto c = t.create_type("vec3", {{"x", "f32"}, {"y", "f32"}, {"z", "f32"}});
    if (!c) return c.error();
  }
  TICKDB_TRY(t.create_table("players", {{"name", "str", 16}, {"score", "u64"}}));
  TICKDB_TRY(t.create_table("entities", {{"owner", "u64"}, {"pos", "vec3"}, {"vel", "vec3"}, {"hp", "i32"}}));
  auto r = t.create_relation("entities", "owner", "players", OnDelete::cascade);
  if (!r) return r.error();
  return json{{"created", true}};
}

Result<json> spawn(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "spawn";
  TICKDB_TRY(check_params(p, {"owner", "n"}, m));
  auto owner = param_u64(p, "owner", m);
  if (!owner) return owner.error();
  auto n = param_u64(p, "n", m);
  if (!n) return n.error();
  if (*n > kMaxSpawn)
    return make_error(Errc::invalid_argument, "spawn: n must be at most " + std::to_string(kMaxSpawn));
  auto tx = ctx.txn();
  if (!tx) return tx.error();
  Transaction& t = **tx;
  auto ents = t.find_table("entities");
  if (!ents) return ents.error();
  auto layout = EntityLayout::of(*(*ents)->schema());
  if (!layout) return layout.error();
  if (!t.get("players", *owner))
    return make_error(Errc::not_found, "spawn: player " + std::to_string(*owner) + " does not exist");
  TICKDB_TRY(t.reserve("entities", (*ents)->slots() + *n));
  RecordBuffer buf(*(*ents)->schema());  // other fields (added later) get their defaults
  std::span<std::byte> rec(buf.data(), layout->size);
  std::uint64_t seed = *owner * 0x2545F4914F6CDD1DULL + (*ents)->next_id();
  std::uint64_t first = 0, last = 0;
  for (std::uint64_t i = 0; i < *n; ++i) {
    store<std::uint64_t>(rec.data() + layout->owner, *owner);
    store_vec3(rec.data() + layout->pos, {unit(seed) * kBound, unit(seed) * kBound, unit(seed) * kBound});
    store_vec3(rec.data() + layout->vel, {unit(seed) * 50.0f, unit(seed) * 50.0f, unit(seed) * 50.0f});
    store<std::int32_t>(rec.data() + layout->hp, 100);
    auto id = t.insert("entities", buf.bytes());
    if (!id) return id.error();
    if (i == 0) first = *id;
    last = *id;
  }
  json out = {{"spawned", *n}};
  if (*n) {
    out["first_id"] = first;
    out["last_id"] = last;
  }
  return out;
}

// One axis: move, and bounce off the walls (a reflection; clamped if still outside).
// Branch-free: the walls are rare, and selects keep the loop free of mispredictions.
inline void move_axis(float& pos, float& vel, float dt) {
  float p = pos + vel * dt;
  const bool hi = p > kBound, lo = p < -kBound;
  p = hi ? 2 * kBound - p : (lo ? -2 * kBound - p : p);
  vel = (hi || lo) ? -vel : vel;
  pos = std::min(std::max(p, -kBound), kBound);
}

Result<json> step(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "step";
  TICKDB_TRY(check_params(p, {"dt"}, m));
  auto dt = param_number_or(p, "dt", ctx.tick_dt(), m);
  if (!dt) return dt.error();
  if (*dt < 0 || *dt > 10) return make_error(Errc::invalid_argument, "step: dt must be 0..10 seconds");
  if (*dt == 0 && !p.contains("dt")) return make_error(Errc::invalid_argument, "step: param 'dt' is required outside the tick loop");
  auto ents = ctx.find_table("entities");
  if (!ents) return json{{"moved", 0}};  // no world yet (setup not run): nothing to move
  auto layout = EntityLayout::of(*(*ents)->schema());
  if (!layout) return layout.error();
  const EntityLayout l = *layout;
  const float fdt = static_cast<float>(*dt);
  std::uint64_t moved = (*ents)->count();
  TICKDB_TRY(ctx.parallel_update("entities", [l, fdt](std::byte* rec, std::uint64_t, UpdateScope&) {
    // One float at a time (packed, unaligned: memcpy loads), so they stay in registers.
    std::byte* pos = rec + l.pos;
    std::byte* vel = rec + l.vel;
    for (std::uint32_t a = 0; a < 12; a += 4) {
      float p = load<float>(pos + a), v = load<float>(vel + a);
      move_axis(p, v, fdt);
      store<float>(pos + a, p);
      store<float>(vel + a, v);
    }
  }));
  return json{{"moved", moved}};
}

Result<json> damage_area(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "damage_area";
  TICKDB_TRY(check_params(p, {"center", "radius", "amount"}, m));
  auto c = p.find("center");
  if (c == p.end() || !c->is_object())
    return make_error(Errc::invalid_argument, "damage_area: param 'center' must be an object {x, y, z}");
  TICKDB_TRY(check_params(*c, {"x", "y", "z"}, "damage_area center"));
  Vec3 center{};
  for (auto [k, out] : {std::pair<const char*, float*>{"x", &center.x}, {"y", &center.y}, {"z", &center.z}}) {
    auto v = param_number(*c, k, "damage_area center");
    if (!v) return v.error();
    if (std::abs(*v) > 1e30) return make_error(Errc::invalid_argument, "damage_area: center is out of range");
    *out = static_cast<float>(*v);
  }
  auto radius = param_number(p, "radius", m);
  if (!radius) return radius.error();
  if (*radius < 0) return make_error(Errc::invalid_argument, "damage_area: radius must not be negative");
  auto amount = param_u64(p, "amount", m);
  if (!amount) return amount.error();
  if (*amount > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))
    return make_error(Errc::invalid_argument, "damage_area: amount must be at most 2147483647");
  auto ents = ctx.find_table("entities");
  if (!ents) return ents.error();
  auto layout = EntityLayout::of(*(*ents)->schema());
  if (!layout) return layout.error();
  const EntityLayout l = *layout;
  const double r2 = *radius * *radius;
  const auto dmg = static_cast<std::int64_t>(*amount);
  std::atomic<std::uint64_t> hit{0}, killed{0};
  TICKDB_TRY(ctx.parallel_update_chunks("entities", [&](const MutableChunkSpan& cs, UpdateScope& scope) -> Status {
    std::uint64_t h = 0, k = 0;
    std::byte* rec = cs.records;
    for (std::uint32_t i = 0; i < cs.count; ++i, rec += cs.record_size) {
      if (!cs.alive[i]) continue;
      Vec3 pos = load_vec3(rec + l.pos);
      double dx = pos.x - center.x, dy = pos.y - center.y, dz = pos.z - center.z;
      if (dx * dx + dy * dy + dz * dz > r2) continue;
      ++h;
      std::int64_t hp = std::max<std::int64_t>(load<std::int32_t>(rec + l.hp) - dmg, std::numeric_limits<std::int32_t>::min());
      store<std::int32_t>(rec + l.hp, static_cast<std::int32_t>(hp));
      if (hp <= 0) {
        scope.erase(cs.ids[i]);
        ++k;
      }
    }
    hit.fetch_add(h, std::memory_order_relaxed);
    killed.fetch_add(k, std::memory_order_relaxed);
    return {};
  }));
  return json{{"hit", hit.load()}, {"killed", killed.load()}};
}

struct Entry {
  std::uint64_t score, id;
};
// Best first: higher score, then lower id (a total order: the result is deterministic).
bool better(const Entry& a, const Entry& b) { return a.score != b.score ? a.score > b.score : a.id < b.id; }

Result<json> leaderboard(CallContext& ctx, const json& p) {
  constexpr std::string_view m = "leaderboard";
  TICKDB_TRY(check_params(p, {"k"}, m));
  auto k = param_u64_or(p, "k", 10, m);
  if (!k) return k.error();
  if (*k < 1 || *k > 1000) return make_error(Errc::invalid_argument, "leaderboard: k must be 1..1000");
  auto players = ctx.find_table("players");
  if (!players) return players.error();
  auto score = FieldAccessor<std::uint64_t>::resolve(*(*players)->schema(), "score");
  if (!score) return score.error();
  const auto acc = *score;
  const std::size_t kk = *k;
  // Each part keeps its best k in a heap whose top is the worst kept.
  auto top = ctx.parallel_reduce(
      "players", std::vector<Entry>{},
      [&](const ChunkSpan& c, std::vector<Entry>& best) {
        for (RecordView r : c) {
          Entry e{acc.get(r.data()), r.id()};
          if (best.size() < kk) {
            best.push_back(e);
            std::push_heap(best.begin(), best.end(), better);
          } else if (better(e, best.front())) {
            std::pop_heap(best.begin(), best.end(), better);
            best.back() = e;
            std::push_heap(best.begin(), best.end(), better);
          }
        }
      },
      [&](std::vector<Entry>& into, const std::vector<Entry>& part) {
        into.insert(into.end(), part.begin(), part.end());
        std::sort(into.begin(), into.end(), better);
        if (into.size() > kk) into.resize(kk);
      });
  if (!top) return top.error();
  std::sort(top->begin(), top->end(), better);
  json out = json::array();
  for (const Entry& e : *top) {
    auto rec = (*players)->get(e.id);
    out.push_back({{"id", e.id}, {"name", std::string(rec->get<std::string_view>("name").value())}, {"score", e.score}});
  }
  return out;
}

Status add(ModuleContext& m, std::string name, std::string description, json params, CallFn fn) {
  Callable c;
  c.name = std::move(name);
  c.description = std::move(description);
  c.params = std::move(params);
  c.route = Route::serial;
  c.fn = std::move(fn);
  return m.registry().add(std::move(c));
}

Status register_game(ModuleContext& m) {
  TICKDB_TRY(add(m, "setup", "Creates the game world's tables (players, entities) if they are not there.",
                 json::object(), setup));
  TICKDB_TRY(add(m, "spawn", "Spawns n entities of a player at random places.", {{"owner", "u64"}, {"n", "u64"}}, spawn));
  TICKDB_TRY(add(m, "step", "Moves every entity by vel*dt, bouncing off the world's bounds (parallel).",
                 {{"dt", "seconds (the tick period in the tick loop)"}}, step));
  TICKDB_TRY(add(m, "damage_area", "Damages entities in a sphere; those at hp <= 0 are deleted (parallel).",
                 {{"center", "{x, y, z}"}, {"radius", "number"}, {"amount", "u32"}}, damage_area));
  TICKDB_TRY(add(m, "leaderboard", "The k best players by score (a parallel reduction).", {{"k", "1..1000 (10)"}},
                 leaderboard));
  return {};
}

}  // namespace

TICKDB_MODULE(register_game)
