#include "core/query_plan.h"

#include <algorithm>
#include <cstring>

namespace tickdb::query_detail {

using Node = CompiledFilter::Node;
using Code = Node::Code;
using Op = FilterExpr::Op;

namespace {

constexpr std::size_t kMaxCombos = 1000;

// A literal of the compiled filter as the field stores it, then as an index key part.
std::string encode_literal(const FieldType& t, std::int64_t i, std::uint64_t u, double d,
                           const std::string* s) {
  std::byte raw[kMaxStrSize] = {};
  switch (t.kind) {
    case Kind::Bool:
      raw[0] = std::byte{static_cast<std::uint8_t>(u ? 1 : 0)};
      break;
    case Kind::I8:
      store<std::int8_t>(raw, static_cast<std::int8_t>(i));
      break;
    case Kind::I16:
      store<std::int16_t>(raw, static_cast<std::int16_t>(i));
      break;
    case Kind::I32:
      store<std::int32_t>(raw, static_cast<std::int32_t>(i));
      break;
    case Kind::I64:
      store<std::int64_t>(raw, i);
      break;
    case Kind::U8:
      store<std::uint8_t>(raw, static_cast<std::uint8_t>(u));
      break;
    case Kind::U16:
      store<std::uint16_t>(raw, static_cast<std::uint16_t>(u));
      break;
    case Kind::U32:
      store<std::uint32_t>(raw, static_cast<std::uint32_t>(u));
      break;
    case Kind::U64:
      store<std::uint64_t>(raw, u);
      break;
    case Kind::F32:
      store<float>(raw, static_cast<float>(d));
      break;
    case Kind::F64:
      store<double>(raw, d);
      break;
    case Kind::Str:
      if (s) std::memcpy(raw, s->data(), std::min<std::size_t>(s->size(), t.size));
      break;
    default:
      break;
  }
  std::string out;
  encode_part(t, raw, out);
  return out;
}

// What the filter's conjuncts say about one index field.
struct Bind {
  std::vector<std::string> eq;
  bool has_eq = false;
  std::string lo, hi, prefix;
  bool has_lo = false, has_hi = false, lo_incl = true, hi_incl = true, has_prefix = false;
};

bool same_field(const Node& n, const KeyPart& p) {
  return !n.is_id && n.offset == p.loc.offset && n.kind == p.loc.type.kind;
}

void bind_leaf(const Node& n, const KeyPart& p, Bind& b) {
  const FieldType& t = p.loc.type;
  if (n.code == Code::in_set) {
    if (b.has_eq) return;
    if (!n.iset.empty())
      for (auto v : n.iset) b.eq.push_back(encode_literal(t, v, 0, 0, nullptr));
    if (!n.uset.empty())
      for (auto v : n.uset) b.eq.push_back(encode_literal(t, 0, v, 0, nullptr));
    if (!n.dset.empty())
      for (auto v : n.dset) b.eq.push_back(encode_literal(t, 0, 0, v, nullptr));
    if (!n.sset.empty())
      for (const auto& v : n.sset) b.eq.push_back(encode_literal(t, 0, 0, 0, &v));
    std::sort(b.eq.begin(), b.eq.end());
    b.eq.erase(std::unique(b.eq.begin(), b.eq.end()), b.eq.end());
    b.has_eq = true;
    return;
  }
  if (n.code != Code::cmp_lit) return;
  if (n.op == Op::prefix) {
    if (!b.has_prefix || n.s.size() > b.prefix.size()) b.prefix = n.s;
    b.has_prefix = true;
    return;
  }
  std::string v = encode_literal(t, n.i, n.u, n.d, &n.s);
  switch (n.op) {
    case Op::eq:
      if (!b.has_eq) b.eq = {std::move(v)};
      b.has_eq = true;
      return;
    case Op::lt:
    case Op::le: {
      const bool incl = n.op == Op::le;
      if (!b.has_hi || v < b.hi || (v == b.hi && !incl)) {
        b.hi = std::move(v);
        b.hi_incl = incl;
      }
      b.has_hi = true;
      return;
    }
    case Op::gt:
    case Op::ge: {
      const bool incl = n.op == Op::ge;
      if (!b.has_lo || v > b.lo || (v == b.lo && !incl)) {
        b.lo = std::move(v);
        b.lo_incl = incl;
      }
      b.has_lo = true;
      return;
    }
    default:
      return;
  }
}

// The top-level conjuncts of the filter.
std::vector<const Node*> conjuncts(const CompiledFilter* f) {
  std::vector<const Node*> out;
  if (!f || f->nodes().empty()) return out;
  const auto& nodes = f->nodes();
  if (nodes[0].code == Code::all_of)
    for (auto k : nodes[0].kids) out.push_back(&nodes[k]);
  else
    out.push_back(&nodes[0]);
  return out;
}

// Order keys before the id key (the served part of an order).
std::vector<const Key*> order_fields(const Order& order, bool* by_id_desc) {
  std::vector<const Key*> out;
  for (const Key& k : order.keys) {
    if (k.is_id) {
      *by_id_desc = k.desc;
      break;
    }
    out.push_back(&k);
  }
  return out;
}

void enumerate(const IndexPlan& p, std::size_t level, std::string& base,
               const std::function<bool(const std::string&)>& fn, bool& go) {
  if (!go) return;
  if (level == p.eq.size()) {
    go = fn(base);
    return;
  }
  for (const auto& v : p.eq[level]) {
    const std::size_t at = base.size();
    base += v;
    enumerate(p, level + 1, base, fn, go);
    base.resize(at);
    if (!go) return;
  }
}

int cmp_prefix(const std::byte* key, const std::string& probe) {
  return probe.empty() ? 0 : std::memcmp(key, probe.data(), probe.size());
}

}  // namespace

IdRange id_range(const CompiledFilter* filter) {
  IdRange r;
  auto at_least = [&](std::uint64_t v) { r.lo = std::max(r.lo, v); };
  auto at_most = [&](std::uint64_t v) { r.hi = std::min(r.hi, v); };
  for (const Node* n : conjuncts(filter)) {
    if (!n->is_id) continue;
    if (n->code == Code::in_set && !n->uset.empty()) {
      at_least(n->uset.front());
      at_most(n->uset.back());
      continue;
    }
    if (n->code != Code::cmp_lit) continue;
    const std::uint64_t v = n->u;
    switch (n->op) {
      case Op::eq:
        at_least(v), at_most(v);
        break;
      case Op::ge:
        at_least(v);
        break;
      case Op::le:
        at_most(v);
        break;
      case Op::gt:
        if (v == UINT64_MAX) return IdRange{1, 0};
        at_least(v + 1);
        break;
      case Op::lt:
        if (v == 0) return IdRange{1, 0};
        at_most(v - 1);
        break;
      default:
        break;
    }
  }
  return r;
}

std::size_t IndexPlan::combos() const {
  std::size_t n = 1;
  for (const auto& s : eq) n *= s.size();
  return n;
}

std::optional<IndexPlan> choose_index(const TableVersion& t, const CompiledFilter* filter,
                                      const Order& order) {
  const auto leaves = conjuncts(filter);
  bool id_desc = false;
  const auto ofields = order_fields(order, &id_desc);
  std::optional<IndexPlan> best;
  int best_score = 0;
  for (const TableIndex& ix : t.indexes()) {
    const auto& parts = ix.layout().parts();
    std::vector<Bind> binds(parts.size());
    for (std::size_t i = 0; i < parts.size(); ++i)
      for (const Node* n : leaves)
        if (same_field(*n, parts[i])) bind_leaf(*n, parts[i], binds[i]);
    IndexPlan p;
    p.index = &ix;
    std::size_t k = 0, combos = 1;
    while (k < parts.size() && binds[k].has_eq && combos * binds[k].eq.size() <= kMaxCombos) {
      combos *= binds[k].eq.size();
      p.eq.push_back(binds[k].eq);
      ++k;
    }
    int score = 0;
    if (ix.is_hash()) {
      if (k != parts.size()) continue;
      score = ix.unique() ? 1000 : 800;
      // Ids come in ascending order per value: one value serves the id order.
      if (combos == 1 && ofields.empty() && !id_desc) p.ordered_walk = true;
    } else {
      score = k == parts.size() && ix.unique() ? 1000 : static_cast<int>(100 * k);
      if (k < parts.size()) {
        const Bind& b = binds[k];
        if (b.has_lo || b.has_hi) {
          p.lo = b.lo;
          p.hi = b.hi;
          p.lo_incl = b.lo_incl;
          p.hi_incl = b.hi_incl;
          score += 50;
        } else if (b.has_prefix) {
          p.prefix = b.prefix;
          p.has_prefix = true;
          score += 40;
        }
      }
      // The order is served when its fields continue the bound prefix, in one direction.
      if (combos == 1) {
        bool served = ofields.size() <= parts.size() - k;
        bool desc = ofields.empty() ? id_desc : ofields[0]->desc;
        for (std::size_t i = 0; served && i < ofields.size(); ++i) {
          const Key& key = *ofields[i];
          served = key.offset == parts[k + i].loc.offset &&
                   key.kind == parts[k + i].loc.type.kind && key.desc == desc;
        }
        // Ordering by id alone is the index's order only when every field is bound.
        if (ofields.empty() && k != parts.size()) served = false;
        if (served) {
          p.ordered_walk = true;
          p.desc = desc;
          for (std::size_t i = 0; i < k; ++i) p.order_off += parts[i].loc.type.size;
          for (std::size_t i = 0; i < ofields.size(); ++i)
            p.order_len += parts[k + i].loc.type.size;
          score += 10;
        }
      }
      if (score == 0) continue;  // nothing bound, no order served
    }
    if (score > best_score) {
      best_score = score;
      best = std::move(p);
    }
  }
  return best;
}

std::uint64_t walk_index(const IndexPlan& p, const std::byte* seek,
                         const std::function<bool(std::uint64_t, const std::byte*)>& visit,
                         const std::function<void(std::uint64_t)>& prefetch) {
  const TableIndex& ix = *p.index;
  std::uint64_t examined = 0;
  std::string base;
  bool go = true;
  if (ix.is_hash()) {
    enumerate(
        p, 0, base,
        [&](const std::string& value) {
          bool more = true;
          // The ids go through a small batch: all of it is prefetched, then visited.
          constexpr std::size_t kBatch = 16;
          std::uint64_t batch[kBatch];
          std::size_t n = 0;
          auto drain = [&] {
            if (prefetch)
              for (std::size_t i = 0; i < n; ++i) prefetch(batch[i]);
            for (std::size_t i = 0; i < n && more; ++i) {
              ++examined;
              more = visit(batch[i], nullptr);
            }
            n = 0;
          };
          ix.hash()
              .find(reinterpret_cast<const std::byte*>(value.data()))
              .for_each([&](std::uint64_t id) {
                batch[n++] = id;
                if (n == kBatch) drain();
                return more;
              });
          drain();
          return more;
        },
        go);
    return examined;
  }
  const OrderedIndex& tree = ix.ordered();
  const std::uint32_t vs = ix.layout().value_size();
  const auto& parts = ix.layout().parts();
  enumerate(
      p, 0, base,
      [&](const std::string& b) {
        // The range inside this combination of bound values: [lo, hi] on the next field, or
        // its prefix, or every key starting with the bound values.
        std::string lo = b + (p.has_prefix ? p.prefix : p.lo);
        const bool lo_excl = !p.has_prefix && !p.lo.empty() && !p.lo_incl;
        const bool hi_prefix_mode = p.hi.empty();
        std::string hi = hi_prefix_mode ? (p.has_prefix ? b + p.prefix : b) : b + p.hi;
        const bool hi_incl = hi_prefix_mode || p.hi_incl;
        std::string from;  // the cursor's position in this combination
        if (seek && p.ordered_walk) {
          from = b;
          for (std::size_t i = p.eq.size();
               i < parts.size() && from.size() - b.size() < p.order_len; ++i)
            encode_part(parts[i].loc.type, seek + parts[i].loc.offset, from);
        }
        auto past_hi = [&](const std::byte* key) {
          int r = cmp_prefix(key, hi);
          return hi_prefix_mode ? r != 0 && !hi.empty() : (r > 0 || (r == 0 && !hi_incl));
        };
        auto before_lo = [&](const std::byte* key) {
          int r = cmp_prefix(key, lo);
          return r < 0 || (r == 0 && lo_excl);
        };
        auto span = [](const std::string& s) {
          return std::span<const std::byte>(reinterpret_cast<const std::byte*>(s.data()), s.size());
        };
        if (!p.desc) {
          auto c = lo_excl ? tree.upper_bound(span(lo)) : tree.lower_bound(span(lo));
          if (!from.empty() && from > lo) c = tree.lower_bound(span(from));
          for (; c.valid(); c.next()) {
            const std::byte* key = c.key();
            if (past_hi(key)) break;
            ++examined;
            if (!visit(decode_id(key + vs), key + p.order_off)) return false;
          }
          return true;
        }
        auto c = hi.empty() ? tree.end()
                 : hi_incl  ? tree.upper_bound(span(hi))
                            : tree.lower_bound(span(hi));
        // The cursor is the tighter start unless the range ends before it (equal on their
        // common length: the cursor lies inside the range).
        if (!from.empty() && (hi.empty() || std::memcmp(from.data(), hi.data(),
                                                        std::min(from.size(), hi.size())) <= 0))
          c = tree.upper_bound(span(from));
        for (c.prev(); c.valid(); c.prev()) {
          const std::byte* key = c.key();
          if (before_lo(key)) break;
          ++examined;
          if (!visit(decode_id(key + vs), key + p.order_off)) return false;
        }
        return true;
      },
      go);
  return examined;
}

}  // namespace tickdb::query_detail
