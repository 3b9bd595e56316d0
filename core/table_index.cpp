#include "core/table_index.h"

#include <algorithm>
#include <cstring>

#include "core/json_codec.h"
#include "core/table.h"

namespace tickdb {

std::string_view index_type_name(IndexType t) {
  return t == IndexType::hash ? "hash" : "ordered";
}

std::optional<IndexType> index_type_from_name(std::string_view s) {
  if (s == "ordered") return IndexType::ordered;
  if (s == "hash") return IndexType::hash;
  return std::nullopt;
}

Result<TableIndex> TableIndex::make(const TableSchema& schema, IndexDef def) {
  if (!def.auto_) TICKDB_TRY(check_name(def.name, "index name"));
  auto layout = KeyLayout::make(schema, def.fields);
  if (!layout)
    return make_error(Errc::invalid_argument, "index '" + def.name + "': " + layout.message());
  TableIndex ix;
  ix.ordered_ = OrderedIndex(layout->key_size());
  ix.hash_ = HashIndex(layout->value_size());
  ix.spec_ = std::make_shared<const Spec>(Spec{std::move(def), std::move(*layout)});
  return ix;
}

IndexDescription TableIndex::describe(std::string_view table) const {
  IndexDescription d;
  d.name = def().name;
  d.table = std::string(table);
  d.fields = def().fields;
  d.type = def().type;
  d.unique = def().unique;
  d.entries = entries();
  d.bytes = is_hash() ? hash_.bytes() : ordered_.bytes();
  d.auto_ = def().auto_;
  return d;
}

std::vector<std::uint64_t> TableIndex::ids_with_value(const std::byte* value,
                                                      std::size_t limit) const {
  std::vector<std::uint64_t> out;
  if (is_hash()) {
    hash_.find(value).for_each([&](std::uint64_t id) {
      if (out.size() >= limit) return false;
      out.push_back(id);
      return true;
    });
    return out;
  }
  const std::uint32_t vs = layout().value_size();
  for (auto c = ordered_.lower_bound({value, vs}); c.valid() && out.size() < limit; c.next()) {
    if (vs && std::memcmp(c.key(), value, vs) != 0) break;
    out.push_back(decode_id(c.key() + vs));
  }
  return out;
}

namespace {
// A record's key: on the stack when it fits (nearly always), else on the heap.
class KeyBuffer {
 public:
  KeyBuffer(const KeyLayout& layout, const std::byte* record, std::uint64_t id) {
    if (layout.key_size() > sizeof buf_) {
      big_.resize(layout.key_size());
      key_ = big_.data();
    }
    layout.encode(record, id, key_);
  }
  const std::byte* get() const { return key_; }

 private:
  std::byte buf_[512];
  std::vector<std::byte> big_;
  std::byte* key_ = buf_;
};
}  // namespace

void TableIndex::add(const std::byte* record, std::uint64_t id, std::uint64_t owner) {
  const KeyBuffer kb(layout(), record, id);
  const std::byte* key = kb.get();
  if (is_hash())
    hash_.insert(key, id, owner);
  else
    ordered_.insert(key, owner);
}

void TableIndex::remove(const std::byte* record, std::uint64_t id, std::uint64_t owner) {
  const KeyBuffer kb(layout(), record, id);
  const std::byte* key = kb.get();
  if (is_hash())
    hash_.erase(key, id, owner);
  else
    ordered_.erase(key, owner);
}

Status TableIndex::check_unique_all(const TableVersion& t) const {
  if (!unique()) return {};
  const std::uint32_t vs = layout().value_size();
  if (is_hash()) {
    std::vector<std::byte> value(vs);
    for (const RecordView r : t) {
      layout().encode_values(r.data(), value.data());
      auto m = hash_.find(value.data());
      if (m.size() > 1) {
        auto ids = m.ids();
        return unique_violation(t, *this, ids[0], ids[1]);
      }
    }
    return {};
  }
  auto c = ordered_.begin();
  if (!c.valid()) return {};
  std::vector<std::byte> prev(c.key(), c.key() + layout().key_size());
  for (c.next(); c.valid(); c.next()) {
    if (std::memcmp(prev.data(), c.key(), vs) == 0)
      return unique_violation(t, *this, decode_id(prev.data() + vs), decode_id(c.key() + vs));
    std::memcpy(prev.data(), c.key(), prev.size());
  }
  return {};
}

Status TableIndex::rebuild(const TableVersion& t, std::uint64_t owner, bool check_unique) {
  const KeyLayout& kl = layout();
  const std::uint32_t ks = kl.key_size(), vs = kl.value_size();
  if (is_hash()) {
    HashIndex h(vs);
    std::vector<std::byte> value(vs);
    for (const RecordView r : t) {
      kl.encode_values(r.data(), value.data());
      if (check_unique && unique()) {
        auto m = h.find(value.data());
        if (!m.empty()) return unique_violation(t, *this, m.ids().front(), r.id());
      }
      h.insert(value.data(), r.id(), owner);
    }
    hash_ = std::move(h);
    return {};
  }
  // Keys in record (= id) order, sorted by their first 8 bytes and then the rest: equal
  // values stay in id order, so the sort is by the whole key.
  const std::size_t n = t.count();
  std::vector<std::byte> keys(n * ks);
  {
    std::size_t i = 0;
    for (const RecordView r : t) kl.encode(r.data(), r.id(), keys.data() + (i++) * ks);
  }
  // Sorted by the first 16 key bytes as two integers, then (longer keys) the rest.
  struct Ref {
    std::uint64_t head, head2;
    std::uint32_t at;
  };
  std::vector<Ref> refs(n);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint64_t h[2] = {0, 0};
    const std::byte* k = keys.data() + i * ks;
    for (std::uint32_t b = 0; b < 16; ++b)
      h[b / 8] = (h[b / 8] << 8) | (b < ks ? std::to_integer<std::uint64_t>(k[b]) : 0);
    refs[i] = {h[0], h[1], static_cast<std::uint32_t>(i)};
  }
  auto less = [&](const Ref& a, const Ref& b) {
    if (a.head != b.head) return a.head < b.head;
    if (a.head2 != b.head2) return a.head2 < b.head2;
    if (ks <= 16) return false;
    return std::memcmp(keys.data() + std::size_t{a.at} * ks + 16,
                       keys.data() + std::size_t{b.at} * ks + 16, ks - 16) < 0;
  };
  const bool sorted = std::is_sorted(refs.begin(), refs.end(), less);
  std::vector<std::byte> ordered_keys;
  const std::byte* src = keys.data();
  if (!sorted) {
    std::sort(refs.begin(), refs.end(), less);
    ordered_keys.resize(n * ks);
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(ordered_keys.data() + i * ks, keys.data() + std::size_t{refs[i].at} * ks, ks);
    src = ordered_keys.data();
  }
  if (check_unique && unique())
    for (std::size_t i = 1; i < n; ++i)
      if (std::memcmp(src + (i - 1) * ks, src + i * ks, vs) == 0)
        return unique_violation(t, *this, decode_id(src + (i - 1) * ks + vs),
                                decode_id(src + i * ks + vs));
  ordered_ = OrderedIndex::build(ks, src, n, owner);
  return {};
}

Error unique_violation(const TableVersion& table, const TableIndex& index, std::uint64_t a,
                       std::uint64_t b) {
  if (a > b) std::swap(a, b);
  std::string values;
  if (auto r = table.get(a)) {
    for (const auto& p : index.layout().parts()) {
      if (!values.empty()) values += ", ";
      values += p.path + " = " + value_to_json(p.loc.type, r->data() + p.loc.offset).dump();
    }
  }
  return make_error(Errc::unique_violation, "unique index '" + index.name() + "' of table '" +
                                                table.name() + "': records " + std::to_string(a) +
                                                " and " + std::to_string(b) +
                                                " have the same key (" + values + ")");
}

Status check_indexes(const TableVersion& t) {
  for (const TableIndex& ix : t.indexes()) {
    auto bad = [&](const std::string& what) {
      return make_error(Errc::internal,
                        "index '" + ix.name() + "' of table '" + t.name() + "': " + what);
    };
    if (ix.entries() != t.count())
      return bad(std::to_string(ix.entries()) + " entries for " + std::to_string(t.count()) +
                 " records");
    TableIndex fresh = ix;
    if (auto s = fresh.rebuild(t, 0); !s) return bad("rebuild failed: " + s.message());
    if (ix.is_hash()) {
      std::vector<std::byte> value(ix.layout().value_size());
      for (const RecordView r : t) {
        ix.layout().encode_values(r.data(), value.data());
        if (!ix.hash().contains(value.data(), r.id()))
          return bad("record " + std::to_string(r.id()) + " is missing");
        if (ix.hash().find(value.data()).size() != fresh.hash().find(value.data()).size())
          return bad("record " + std::to_string(r.id()) + "'s value has another id count");
      }
      continue;
    }
    const std::uint32_t ks = ix.layout().key_size();
    auto a = ix.ordered().begin();
    auto b = fresh.ordered().begin();
    for (std::size_t i = 0; a.valid() || b.valid(); a.next(), b.next(), ++i) {
      if (a.valid() != b.valid()) return bad("a different number of keys");
      if (std::memcmp(a.key(), b.key(), ks) != 0)
        return bad("key " + std::to_string(i) + " differs (id " +
                   std::to_string(decode_id(a.key() + ks - 8)) + " against " +
                   std::to_string(decode_id(b.key() + ks - 8)) + ")");
    }
  }
  return {};
}

}  // namespace tickdb
