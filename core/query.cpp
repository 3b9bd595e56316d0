#include "core/query.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/json_codec.h"
#include "core/projection.h"
#include "core/query_order.h"
#include "core/query_plan.h"

namespace tickdb {

using json = nlohmann::json;
using namespace query_detail;

namespace {

Error bad(const std::string& what) {
  return make_error(Errc::invalid_argument, what);
}

// ---- parameters ----

Result<std::uint64_t> u64_param(const json& v, const std::string& name) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  return bad("'" + name + "' must be a non-negative integer");
}

// ---- cursors: base64url of [1][fingerprint u64][id u64][each order key's bytes] ----

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(const std::string& in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v =
        (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    std::uint32_t v = std::uint8_t(in[i]) << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> b64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::strchr(kB64, c);
    if (!p || c == 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::uint64_t fingerprint(const QuerySpec& q) {
  std::string s = q.filter ? filter_to_string(*q.filter) : std::string();
  s += '\n';
  for (const auto& o : q.order) s += (o.desc ? "-" : "") + o.path + ",";
  s += '\n';
  for (const auto& f : q.select) s += f + ",";
  return XXH3_64bits(s.data(), s.size());
}

std::string encode_cursor(const QuerySpec& q, const Order& order, const Cand& last) {
  std::string raw(1, '\x01');
  std::uint64_t fp = fingerprint(q);
  raw.append(reinterpret_cast<const char*>(&fp), 8);
  raw.append(reinterpret_cast<const char*>(&last.id), 8);
  for (const Key& k : order.keys)
    if (!k.is_id) raw.append(reinterpret_cast<const char*>(last.rec + k.offset), k.size);
  return b64url(raw);
}

// The cursor's position as a record (its key fields in place, the rest zero) and id.
Result<std::uint64_t> decode_cursor(const QuerySpec& q, const Order& order, std::string_view text,
                                    std::vector<std::byte>& rec) {
  auto raw = b64url_decode(text);
  std::size_t need = 17;
  for (const Key& k : order.keys)
    if (!k.is_id) need += k.size;
  if (!raw || raw->size() != need || (*raw)[0] != '\x01')
    return bad("cursor: not a cursor of this query (malformed)");
  std::uint64_t fp, id;
  std::memcpy(&fp, raw->data() + 1, 8);
  std::memcpy(&id, raw->data() + 9, 8);
  if (fp != fingerprint(q))
    return bad(
        "cursor: it belongs to another filter, order or select (a cursor is valid only with the "
        "query it came from)");
  std::size_t at = 17;
  for (const Key& k : order.keys)
    if (!k.is_id) {
      std::memcpy(rec.data() + k.offset, raw->data() + at, k.size);
      at += k.size;
    }
  return id;
}

// First slot whose id is above `id` (ids rise with slots, dead slots keep theirs).
std::uint64_t first_slot_above(const TableVersion& t, std::uint64_t id) {
  std::uint64_t lo = 0, hi = t.slots();
  while (lo < hi) {
    std::uint64_t mid = lo + (hi - lo) / 2;
    if (t.slot_unchecked(mid).id() <= id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace

Result<std::vector<std::string>> field_names_from_json(const json& v, const char* what) {
  std::vector<std::string> out;
  auto add = [&](std::string_view s) -> Status {
    if (s.empty()) return bad(std::string(what) + ": an empty field name");
    out.emplace_back(s);
    return {};
  };
  if (v.is_string()) {
    std::string_view s = v.get_ref<const std::string&>();
    if (s.empty()) return bad(std::string(what) + ": expected field names separated by ','");
    std::size_t start = 0;
    while (true) {
      auto comma = s.find(',', start);
      TICKDB_TRY(add(s.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return out;
  }
  if (v.is_array() && !v.empty()) {
    for (const auto& e : v) {
      if (!e.is_string()) return bad(std::string(what) + ": expected an array of field names");
      TICKDB_TRY(add(e.get_ref<const std::string&>()));
    }
    return out;
  }
  return bad(std::string(what) +
             ": expected a string of field names separated by ',' or an array of them");
}

Result<QuerySpec> query_spec_from_json(const json& p, const std::vector<std::string>& known,
                                       bool in_url) {
  if (!p.is_object()) return bad("query parameters must be an object");
  QuerySpec q;
  for (const auto& [k, v] : p.items()) {
    if (k == "filter") {
      if (v.is_string() && v.get_ref<const std::string&>().size() >
                               (in_url ? kFilterMaxUrlBytes : kFilterMaxBodyBytes))
        return bad("filter: longer than " +
                   std::to_string(in_url ? kFilterMaxUrlBytes : kFilterMaxBodyBytes) + " bytes" +
                   (in_url ? " (send long filters in a POST .../query body)" : ""));
      if (v.is_array() && v.dump().size() > kFilterMaxBodyBytes)
        return bad("filter: longer than " + std::to_string(kFilterMaxBodyBytes) + " bytes");
      auto f = parse_filter(v);
      if (!f) return f.error();
      q.filter = std::move(*f);
    } else if (k == "order") {
      auto names = field_names_from_json(v, "order");
      if (!names) return names.error();
      if (names->size() > kQueryMaxOrderFields)
        return bad("order: at most " + std::to_string(kQueryMaxOrderFields) + " fields");
      for (auto& n : *names) {
        OrderKey o;
        o.desc = n[0] == '-';
        o.path = o.desc ? n.substr(1) : n;
        if (o.path.empty()) return bad("order: an empty field name");
        q.order.push_back(std::move(o));
      }
    } else if (k == "select") {
      auto names = field_names_from_json(v, "select");
      if (!names) return names.error();
      q.select = std::move(*names);
    } else if (k == "limit" || k == "after" || k == "offset") {
      auto n = u64_param(v, k);
      if (!n) return n.error();
      if (k == "limit")
        q.limit = *n;
      else if (k == "after")
        q.after = *n;
      else
        q.offset = *n;
    } else if (k == "cursor") {
      if (!v.is_string() || v.get_ref<const std::string&>().empty())
        return bad("cursor: expected the next_cursor string of the previous page");
      q.cursor = v.get<std::string>();
    } else if (k == "count") {
      if (v == "exact")
        q.count = QuerySpec::Count::exact;
      else if (v == "none")
        q.count = QuerySpec::Count::none;
      else
        return bad("count: expected \"exact\" or \"none\"");
    } else if (k == "explain") {
      if (!v.is_boolean()) return bad("explain: expected true or false");
      q.explain = v.get<bool>();
    } else if (std::find(known.begin(), known.end(), k) == known.end()) {
      return bad("unknown parameter '" + k.substr(0, 64) + "'");
    }
  }
  if (q.limit < 1 || q.limit > kQueryMaxLimit)
    return bad("limit must be 1.." + std::to_string(kQueryMaxLimit) + ", it is " +
               std::to_string(q.limit));
  if (q.offset && *q.offset > kQueryMaxOffset)
    return bad("offset must be at most " + std::to_string(kQueryMaxOffset) +
               " (page with 'cursor' instead)");
  if (int(q.after.has_value()) + int(q.offset.has_value()) + int(q.cursor.has_value()) > 1)
    return bad("give one of 'after', 'offset' and 'cursor'");
  const bool default_order =
      q.order.empty() || (q.order.size() == 1 && q.order[0].path == "id" && !q.order[0].desc);
  if (q.after && !default_order)
    return bad("'after' pages in id order only: use 'cursor' with another order");
  return q;
}

Result<QueryPage> run_query(const TableVersion& t, const QuerySpec& q) {
  // Timed for `explain` only (its "ms"): two clock reads are a few percent of a point query.
  const auto t0 =
      q.explain ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  const TableSchema& schema = *t.schema();
  std::optional<CompiledFilter> filter;
  if (q.filter) {
    auto f = CompiledFilter::compile(*q.filter, schema);
    if (!f) return f.error();
    filter = std::move(*f);
  }
  Order order;
  for (const auto& o : q.order) {
    auto k = resolve_key(schema, o.path, "order");
    if (!k) return k.error();
    k->desc = o.desc;
    const bool id = k->is_id;
    order.keys.push_back(std::move(*k));
    if (id) break;  // id is unique: keys after it never decide
  }
  if (order.keys.empty() || !order.keys.back().is_id) {
    Key id;
    id.is_id = true;
    id.path = "id";
    order.keys.push_back(id);
  }
  if (!q.select.empty())
    if (auto p = Projection::make(schema, q.select); !p) return p.error();

  // Where the page starts: after the cursor, or after the `after` id.
  std::vector<std::byte> cursor_rec(q.cursor || q.after ? schema.record_size() : 0);
  std::optional<Cand> from;
  if (q.cursor) {
    auto id = decode_cursor(q, order, *q.cursor, cursor_rec);
    if (!id) return id.error();
    from = Cand{cursor_rec.data(), *id};
  } else if (q.after) {
    from = Cand{cursor_rec.data(), *q.after};
  }

  QueryPage page;
  const std::uint64_t skip = q.offset.value_or(0);
  const std::uint64_t want = skip + q.limit + 1;  // one more tells whether a next page exists
  std::vector<Cand> got;
  std::vector<std::uint8_t> mask, scratch;  // sized by the first chunk a scan reads
  const bool exact =
      q.count == QuerySpec::Count::exact || (q.count == QuerySpec::Count::automatic && !filter);
  std::optional<std::uint64_t> matched;  // every match of the filter, when the plan saw them all
  auto chunk_mask = [&](const ChunkSpan& c) {
    if (mask.size() < t.records_per_chunk()) mask.resize(t.records_per_chunk());
    if (filter)
      filter->match_chunk(c, mask.data(), scratch);
    else
      for (std::uint32_t i = 0; i < c.count; ++i) mask[i] = c.alive ? c.alive[i] != 0 : 1;
  };

  // The `want` first candidates in the order, in a bounded max-heap.
  auto less = [&](const Cand& a, const Cand& b) { return order(a, b) < 0; };
  auto offer = [&](const Cand& cand) {
    if (got.size() < want) {
      got.push_back(cand);
      std::push_heap(got.begin(), got.end(), less);
    } else if (less(cand, got.front())) {
      std::pop_heap(got.begin(), got.end(), less);
      got.back() = cand;
      std::push_heap(got.begin(), got.end(), less);
    }
  };
  // An index, unless the plain id walk is already the best plan.
  // The ids the filter allows bound every walk over slots (ids rise with slots); a narrow
  // range of them is cheaper to walk than any index.
  const IdRange ids = id_range(filter ? &*filter : nullptr);
  const bool narrow_ids = ids.empty() || ids.hi - ids.lo < 65536;
  std::optional<IndexPlan> plan;
  if ((filter || !order.by_id()) && !narrow_ids)
    plan = choose_index(t, filter ? &*filter : nullptr, order);

  if (plan) {
    page.index = plan->index->name();
    std::uint64_t n = 0, accepted = 0;
    bool stopped = false;
    std::string boundary;  // an ordered walk: the order fields of the want-th candidate
    page.scanned = walk_index(
        *plan, from ? from->rec : nullptr,
        [&](std::uint64_t id, const std::byte* obytes) {
          if (plan->ordered_walk && accepted >= want &&
              (plan->order_len == 0 ||
               std::memcmp(obytes, boundary.data(), plan->order_len) != 0)) {
            stopped = true;  // past the last group of ties that can still enter the page
            return false;
          }
          auto found = t.get(id);
          if (!found) return true;  // (indexes are in step with the records)
          const RecordView& r = *found;
          if (filter && !filter->match(r.data(), id)) return true;
          ++n;
          Cand cand{r.data(), id};
          if (from && order(cand, *from) <= 0) return true;
          if (++accepted == want && plan->ordered_walk)
            boundary.assign(reinterpret_cast<const char*>(obytes ? obytes : r.data()),
                            plan->order_len);
          offer(cand);
          return true;
        },
        [&t, rpc = t.records_per_chunk()](std::uint64_t id) {
          // Dense ids (the common case) sit in slot id - 1: start loading that slot's id,
          // live flag and record, which find_slot and the record read touch next.
          const std::uint64_t slot = id - 1;
          if (id == 0 || slot / rpc >= t.used_chunk_count()) return;
          const ChunkSpan c = t.chunk_span(slot / rpc);
          const std::uint32_t i = static_cast<std::uint32_t>(slot % rpc);
          if (i >= c.count) return;
          __builtin_prefetch(c.ids + i);
          if (c.alive) __builtin_prefetch(c.alive + i);
          __builtin_prefetch(c.records + std::size_t{i} * c.record_size);
        });
    std::sort_heap(got.begin(), got.end(), less);
    // Every match was seen unless the walk stopped early or started at the cursor.
    if (!stopped && !(from && plan->ordered_walk)) matched = n;
  } else if (order.by_id() && !order.keys[0].desc) {
    // Slot order is id order: walk from the cursor (or the filter's lowest id) and stop when
    // the page is full or past the filter's highest id.
    std::uint64_t slot =
        first_slot_above(t, std::max(from ? from->id : 0, ids.lo ? ids.lo - 1 : 0));
    const std::uint32_t rpc = t.records_per_chunk();
    bool past = ids.empty();
    for (std::size_t k = slot / rpc; !past && k < t.used_chunk_count() && got.size() < want; ++k) {
      ChunkSpan c = t.chunk_span(k);
      chunk_mask(c);
      std::uint32_t i = k == slot / rpc ? static_cast<std::uint32_t>(slot % rpc) : 0;
      for (; i < c.count && got.size() < want; ++i) {
        if (c.ids[i] > ids.hi) {
          past = true;
          break;
        }
        page.scanned += c.alive ? c.alive[i] != 0 : 1;
        if (mask[i]) got.push_back(Cand{c.records + std::size_t{i} * c.record_size, c.ids[i]});
      }
    }
  } else if (order.by_id()) {
    // Descending ids: the same walk backwards from the cursor.
    const std::uint64_t upto = std::min(from ? (from->id ? from->id - 1 : 0) : ids.hi, ids.hi);
    const std::uint64_t end =
        ids.empty() ? 0 : first_slot_above(t, upto);  // the slots of ids <= upto
    const std::uint32_t rpc = t.records_per_chunk();
    bool past = false;
    for (std::uint64_t k1 = (end + rpc - 1) / rpc; !past && k1 > 0 && got.size() < want; --k1) {
      const std::size_t k = k1 - 1;
      ChunkSpan c = t.chunk_span(k);
      chunk_mask(c);
      std::uint32_t i = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(c.count, end - std::uint64_t{k} * rpc));
      for (; i > 0 && got.size() < want; --i) {
        if (c.ids[i - 1] < ids.lo) {
          past = true;
          break;
        }
        page.scanned += c.alive ? c.alive[i - 1] != 0 : 1;
        if (mask[i - 1])
          got.push_back(Cand{c.records + std::size_t{i - 1} * c.record_size, c.ids[i - 1]});
      }
    }
  } else {
    // Any other order: every match, through the heap.
    std::uint64_t n = 0;
    const std::uint64_t s0 = ids.empty() ? 0 : first_slot_above(t, ids.lo - 1);
    const std::uint64_t s1 = ids.empty() ? 0 : first_slot_above(t, ids.hi);
    const std::uint32_t rpc = t.records_per_chunk();
    for (std::uint64_t k = s0 / rpc; k * rpc < s1; ++k) {
      ChunkSpan c = t.chunk_span(static_cast<std::size_t>(k));
      chunk_mask(c);
      const std::uint32_t i0 = static_cast<std::uint32_t>(std::max(s0, k * rpc) - k * rpc);
      const std::uint32_t i1 =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(s1 - k * rpc, c.count));
      const std::byte* rec = c.records + std::size_t{i0} * c.record_size;
      for (std::uint32_t i = i0; i < i1; ++i, rec += c.record_size) {
        page.scanned += c.alive ? c.alive[i] != 0 : 1;
        if (!mask[i]) continue;
        ++n;
        Cand cand{rec, c.ids[i]};
        if (from && order(cand, *from) <= 0) continue;
        offer(cand);
      }
    }
    std::sort_heap(got.begin(), got.end(), less);
    matched = n;
  }

  const bool more = got.size() == want;
  const std::size_t first = std::min<std::size_t>(skip, got.size());
  const std::size_t last = std::min<std::size_t>(skip + q.limit, got.size());
  for (std::size_t i = first; i < last; ++i)
    page.records.emplace_back(got[i].rec, got[i].id, &schema);
  if (more && last > first) {
    const Cand& end = got[last - 1];
    page.next_cursor = encode_cursor(q, order, end);
    if (order.by_id() && !order.keys[0].desc && q.order.size() <= 1) page.next_after = end.id;
  }
  if (exact) {
    if (!filter) {
      page.total = t.count();
    } else if (matched) {
      page.total = *matched;
    } else {
      page.total = filter->count(t);
      page.scanned += t.count();
    }
  }
  if (q.explain)
    page.ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return page;
}

namespace {

void append_u64(std::string& out, std::uint64_t v) {
  out += std::to_string(v);
}

}  // namespace

void append_query_page_json(std::string& out, const QueryPage& page, const QuerySpec& q,
                            const TableSchema& schema) {
  std::optional<Result<Projection>> proj;  // none for every field: no projection to make
  if (!q.select.empty()) proj = Projection::make(schema, q.select);  // checked by run_query
  out += "{\"records\":[";
  for (std::size_t i = 0; (!proj || *proj) && i < page.records.size(); ++i) {
    if (i) out += ',';
    const RecordView& r = page.records[i];
    if (proj)
      (*proj)->append_record(out, r.data(), r.id());
    else
      append_record_json(out, r);
  }
  out += "],\"count\":";
  append_u64(out, page.records.size());
  out += ",\"total\":";
  if (page.total)
    append_u64(out, *page.total);
  else
    out += "null";
  out += ",\"next_after\":";
  if (page.next_after)
    append_u64(out, *page.next_after);
  else
    out += "null";
  out += ",\"next_cursor\":";
  if (page.next_cursor)
    append_json_string(out, *page.next_cursor);
  else
    out += "null";
  if (q.explain) {
    out += ",\"plan\":";
    out += json{{"index", page.index.empty() ? json(nullptr) : json(page.index)},
                {"scanned", page.scanned},
                {"ms", page.ms}}
               .dump();
  }
  out += '}';
}

json query_page_to_json(const QueryPage& page, const QuerySpec& q, const TableSchema& schema) {
  std::string text;
  append_query_page_json(text, page, q, schema);
  return json::parse(text);
}

}  // namespace tickdb
