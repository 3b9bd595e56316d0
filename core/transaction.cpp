#include "core/transaction.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <unordered_set>

namespace tickdb {

std::uint64_t new_owner_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

namespace {
// A table's indexes are kept in name order: listings and snapshots do not depend on the
// order they were made in.
void add_sorted(std::vector<TableIndex>& ixs, TableIndex ix) {
  auto at =
      std::lower_bound(ixs.begin(), ixs.end(), ix.name(),
                       [](const TableIndex& a, const std::string& n) { return a.name() < n; });
  ixs.insert(at, std::move(ix));
}

std::string rec_name(std::string_view table, std::uint64_t id) {
  return "record " + std::to_string(id) + " of table '" + std::string(table) + "'";
}
}  // namespace

Transaction::Transaction(std::shared_ptr<const DbVersion> base)
    : base_(std::move(base)),
      owner_(new_owner_id()),
      tables_(base_->tables_),
      types_(base_->types_),
      relations_(base_->relations_),
      next_relation_id_(base_->next_relation_id_) {}

Status Transaction::check_open() const {
  if (committed_) return make_error(Errc::internal, "transaction already committed");
  if (poisoned_) return *poisoned_;
  if (limits_) return check_deadline();
  return {};
}

void Transaction::set_limits(Limits l) {
  limits_ = std::move(l);
  written_bytes_ = 0;
  ops_ = 0;
}

Status Transaction::check_deadline() const {
  if (!limits_ || ++ops_ % kClockEvery != 0) return {};
  if (std::chrono::steady_clock::now() <= limits_->deadline) return {};
  poisoned_ = deadline_error();
  return *poisoned_;
}

Error Transaction::deadline_error() const {
  return make_error(Errc::resource_exhausted,
                    (limits_ ? limits_->who : std::string("the call")) +
                        " ran past procedures.timeout_ms (" +
                        std::to_string(limits_ ? limits_->timeout.count() : 0) +
                        " ms): stopped, nothing of it is committed");
}

Status Transaction::check_write(std::uint64_t bytes) {
  TICKDB_TRY(check_open());
  if (!limits_) return {};
  if (bytes > limits_->max_write_bytes - std::min(written_bytes_, limits_->max_write_bytes)) {
    poisoned_ = make_error(Errc::resource_exhausted,
                           limits_->who + " would write more than procedures.max_write_bytes (" +
                               std::to_string(limits_->max_write_bytes) +
                               " bytes) of records: stopped, nothing of it is committed");
    return *poisoned_;
  }
  written_bytes_ += bytes;
  return {};
}

Status Transaction::poison(Status s) {
  if (!s.is_ok()) poisoned_ = s.error();
  return s;
}

const TableVersion* Transaction::table(std::string_view name) const {
  if (limits_ && !check_deadline()) return nullptr;  // poisoned: find_table says why
  touch(name);
  auto it = tables_.find(name);
  return it == tables_.end() ? nullptr : it->second.get();
}

Result<const TableVersion*> Transaction::find_table(std::string_view name) const {
  if (auto* t = table(name)) return t;
  if (poisoned_) return *poisoned_;
  return make_error(Errc::not_found,
                    "table '" + std::string(name.substr(0, 80)) + "' does not exist");
}

std::optional<RecordView> Transaction::get(std::string_view t, std::uint64_t id) const {
  auto* tv = table(t);
  if (!tv) return std::nullopt;
  return tv->get(id);
}

Result<TableVersion*> Transaction::writer(std::string_view name) {
  touch(name);
  auto w = writers_.find(name);
  if (w != writers_.end()) return w->second.get();
  auto it = tables_.find(name);
  if (it == tables_.end())
    return make_error(Errc::not_found,
                      "table '" + std::string(name.substr(0, 80)) + "' does not exist");
  auto copy = it->second->writable_copy(owner_);
  it->second = copy;
  TableVersion* raw = copy.get();
  writers_.emplace(std::string(name), std::move(copy));
  return raw;
}

Result<TableVersion*> Transaction::writable_table(std::string_view table) {
  TICKDB_TRY(check_open());
  TICKDB_TRY(settle_indexes());
  auto w = writer(table);
  if (!w) return w;
  changed_ = true;
  if (std::find(dirty_.begin(), dirty_.end(), table) == dirty_.end()) dirty_.emplace_back(table);
  return w;
}

Status Transaction::settle_indexes() {
  while (!dirty_.empty()) {
    const std::string name = dirty_.back();
    auto w = writers_.find(name);
    if (w != writers_.end() && !w->second->indexes().empty()) {
      // Unique keys are checked at commit, over the whole table.
      TICKDB_TRY(poison(w->second->rebuild_indexes(false)));
      if (std::find(unique_all_.begin(), unique_all_.end(), name) == unique_all_.end())
        unique_all_.push_back(name);
    }
    dirty_.pop_back();
  }
  return {};
}

Result<std::vector<ChunkWork>> Transaction::begin_parallel_update(std::string_view table) {
  TICKDB_TRY(check_open());
  TICKDB_TRY(settle_indexes());
  auto w = writer(table);
  if (!w) return w.error();
  changed_ = true;
  return (*w)->begin_parallel_update();
}

Status Transaction::finish_parallel_update(std::string_view table, std::vector<ChunkWork>& work) {
  TICKDB_TRY(check_open());
  auto w = writer(table);
  if (!w) return w.error();
  changed_ = true;
  return poison((*w)->finish_parallel_update(work));
}

// ---------------- schema ----------------

Status Transaction::create_table(const std::string& name, const std::vector<FieldSpec>& fields,
                                 std::uint64_t capacity) {
  TICKDB_TRY(check_open());
  TICKDB_TRY(check_name(name, "table name"));
  touch(name);
  if (tables_.count(name))
    return make_error(Errc::already_exists, "table '" + name + "' already exists");
  auto schema = TableSchema::build(name, fields, *types_);
  if (!schema) return schema.error();
  auto t = std::make_shared<TableVersion>(*schema, owner_);
  TICKDB_TRY(t->reserve(capacity));
  tables_[name] = t;
  writers_[name] = t;
  changed_ = true;
  return {};
}

Status Transaction::drop_table(std::string_view name) {
  TICKDB_TRY(check_open());
  touch(name);
  auto it = tables_.find(name);
  if (it == tables_.end())
    return make_error(Errc::not_found,
                      "table '" + std::string(name.substr(0, 80)) + "' does not exist");
  for (const auto& [id, r] : *relations_)
    if (r.from_table == name || r.to_table == name)
      return make_error(Errc::conflict, "table '" + std::string(name) + "' is used by relation " +
                                            std::to_string(id) + " (" + r.from_table + "." +
                                            r.from_field + " -> " + r.to_table + ")");
  tables_.erase(it);
  if (auto w = writers_.find(name); w != writers_.end()) writers_.erase(w);
  changed_ = true;
  return {};
}

Status Transaction::add_field(std::string_view table, const FieldSpec& field) {
  TICKDB_TRY(check_open());
  auto t = find_table(table);
  if (!t) return t.error();
  auto schema = (*t)->schema()->with_field(field, *types_);
  if (!schema) return schema.error();
  return relayout(**t, *schema);
}

Status Transaction::remove_field(std::string_view table, std::string_view field) {
  TICKDB_TRY(check_open());
  auto t = find_table(table);
  if (!t) return t.error();
  for (const auto& [id, r] : *relations_)
    if (r.from_table == table && r.from_field == field)
      return make_error(Errc::conflict, "field '" + std::string(field) + "' of table '" +
                                            std::string(table) + "' is used by relation " +
                                            std::to_string(id));
  for (const auto& ix : (*t)->indexes())
    for (const auto& path : ix.def().fields)
      if (path == field ||
          (path.size() > field.size() && path.starts_with(field) && path[field.size()] == '.'))
        return make_error(Errc::conflict, "field '" + std::string(field) + "' of table '" +
                                              std::string(table) + "' is used by index '" +
                                              ix.name() + "'");
  auto schema = (*t)->schema()->without_field(field);
  if (!schema) return schema.error();
  return relayout(**t, *schema);
}

Status Transaction::relayout(const TableVersion& t, std::shared_ptr<const TableSchema> schema) {
  TICKDB_TRY(settle_indexes());
  auto relaid = t.relayout(std::move(schema), owner_);
  if (!relaid) return relaid.error();
  const std::string name = t.name();
  tables_[name] = *relaid;
  writers_[name] = *relaid;
  changed_ = true;
  return {};
}

Result<std::shared_ptr<const CompositeType>> Transaction::create_type(
    const std::string& name, const std::vector<FieldSpec>& fields) {
  TICKDB_TRY(check_open());
  auto reg = std::make_shared<TypeRegistry>(*types_);
  auto c = reg->create(name, fields);
  if (!c) return c.error();
  types_ = std::move(reg);
  changed_ = true;
  return c;
}

Status Transaction::drop_type(std::string_view name) {
  TICKDB_TRY(check_open());
  if (!types_->find(name))
    return make_error(Errc::not_found,
                      "type '" + std::string(name.substr(0, 80)) + "' does not exist");
  touched_.all = true;
  for (const auto& [tname, t] : tables_)
    for (const auto& ix : t->indexes())
      for (const auto& p : ix.def().fields) {
        const std::string top = p.substr(0, p.find('.'));
        auto fi = t->schema()->index_of(top);
        if (fi && type_uses(t->schema()->fields()[*fi].type, name))
          return make_error(Errc::conflict, "type '" + std::string(name) + "' is used by index '" +
                                                ix.name() + "' of table '" + tname + "'");
      }
  for (const auto& [tname, t] : tables_)
    if (t->schema()->uses_type(name))
      return make_error(Errc::conflict,
                        "type '" + std::string(name) + "' is used by table '" + tname + "'");
  auto reg = std::make_shared<TypeRegistry>(*types_);
  TICKDB_TRY(reg->drop(name));
  types_ = std::move(reg);
  changed_ = true;
  return {};
}

Result<Relation> Transaction::create_relation(const std::string& from_table,
                                              const std::string& from_field,
                                              const std::string& to_table, OnDelete on_delete) {
  TICKDB_TRY(check_open());
  auto from = find_table(from_table);
  if (!from) return from.error();
  auto to = find_table(to_table);
  if (!to) return to.error();
  if (from_field.find('.') != std::string::npos)
    return make_error(Errc::invalid_argument,
                      "relation field '" + from_field +
                          "' must be a top-level u64 field, not a path into a composite");
  auto idx = (*from)->schema()->index_of(from_field);
  if (!idx) return idx.error();
  const Field& f = (*from)->schema()->fields()[*idx];
  if (f.type.kind != Kind::U64)
    return make_error(Errc::invalid_argument,
                      "relation field '" + from_field + "' must be u64, it is " + f.type.name());
  for (const auto& [id, r] : *relations_)
    if (r.from_table == from_table && r.from_field == from_field && r.to_table == to_table)
      return make_error(Errc::already_exists, "relation " + std::to_string(id) + " already links " +
                                                  from_table + "." + from_field + " to " +
                                                  to_table);
  auto acc = FieldAccessor<std::uint64_t>::resolve(*(*from)->schema(), from_field);
  for (const RecordView rec : **from) {
    std::uint64_t v = acc->get(rec.data());
    if (v != 0 && !(*to)->contains(v))
      return make_error(Errc::foreign_key_violation,
                        rec_name(from_table, rec.id()) + " has " + from_field + " = " +
                            std::to_string(v) + ", which is no record of table '" + to_table + "'");
  }
  TICKDB_TRY(settle_indexes());
  TICKDB_TRY(add_auto_index(from_table, from_field));
  Relation r{next_relation_id_, from_table, from_field, to_table, on_delete};
  auto rels = std::make_shared<RelationMap>(*relations_);
  rels->emplace(r.id, r);
  relations_ = std::move(rels);
  ++next_relation_id_;
  changed_ = true;
  return r;
}

Status Transaction::delete_relation(std::uint64_t id) {
  TICKDB_TRY(check_open());
  if (!relations_->count(id))
    return make_error(Errc::not_found, "relation " + std::to_string(id) + " does not exist");
  const Relation gone = relations_->at(id);
  auto rels = std::make_shared<RelationMap>(*relations_);
  rels->erase(id);
  relations_ = std::move(rels);
  drop_auto_index_if_unused(gone.from_table, gone.from_field);
  changed_ = true;
  return {};
}

// ---------------- indexes ----------------

Status Transaction::add_auto_index(const std::string& table, const std::string& field) {
  const TableVersion* t = this->table(table);
  if (!t) return make_error(Errc::internal, "relation table vanished");
  for (const auto& ix : t->indexes())
    if (ix.def().auto_ && ix.def().fields.front() == field) return {};
  std::string name = table + "_" + field + "_rel";
  for (int n = 2; t->find_index(name); ++n) name = table + "_" + field + "_rel" + std::to_string(n);
  auto made =
      TableIndex::make(*t->schema(), IndexDef{name, {field}, IndexType::ordered, false, true});
  if (!made) return made.error();
  auto w = writer(table);
  if (!w) return w.status();
  TICKDB_TRY(made->rebuild(**w, owner_));
  add_sorted((*w)->mutable_indexes(), std::move(*made));
  changed_ = true;
  return {};
}

void Transaction::drop_auto_index_if_unused(const std::string& table, const std::string& field) {
  for (const auto& [id, r] : *relations_)
    if (r.from_table == table && r.from_field == field) return;
  const TableVersion* t = this->table(table);
  if (!t) return;
  auto w = writer(table);
  if (!w) return;
  auto& ixs = (*w)->mutable_indexes();
  std::erase_if(ixs, [&](const TableIndex& ix) {
    return ix.def().auto_ && ix.def().fields.front() == field;
  });
}

Result<IndexDescription> Transaction::create_index(std::string_view table, IndexDef def) {
  TICKDB_TRY(check_open());
  TICKDB_TRY(settle_indexes());
  auto t = find_table(table);
  if (!t) return t.error();
  def.auto_ = false;
  if (def.name.size() > 80) def.name = def.name.substr(0, 80);  // check_name refuses it anyway
  auto made = TableIndex::make(*(*t)->schema(), def);
  if (!made) return made.error();
  if ((*t)->find_index(def.name))
    return make_error(Errc::already_exists, "index '" + def.name + "' of table '" +
                                                std::string(table) + "' already exists");
  auto w = writer(table);
  if (!w) return w.error();
  TICKDB_TRY(made->rebuild(**w, owner_));
  IndexDescription d = made->describe(table);
  add_sorted((*w)->mutable_indexes(), std::move(*made));
  changed_ = true;
  return d;
}

Status Transaction::drop_index(std::string_view table, std::string_view name) {
  TICKDB_TRY(check_open());
  TICKDB_TRY(settle_indexes());
  auto t = find_table(table);
  if (!t) return t.error();
  const TableIndex* ix = (*t)->find_index(name);
  if (!ix)
    return make_error(Errc::not_found, "index '" + std::string(name.substr(0, 80)) +
                                           "' of table '" + std::string(table) +
                                           "' does not exist");
  if (ix->def().auto_) {
    std::string rel;
    for (const auto& [id, r] : *relations_)
      if (r.from_table == table && r.from_field == ix->def().fields.front())
        rel += (rel.empty() ? "" : ", ") + std::to_string(id);
    return make_error(Errc::conflict, "index '" + std::string(name) + "' of table '" +
                                          std::string(table) +
                                          "' is the automatic index of relation " + rel +
                                          ": it goes when the relation is deleted");
  }
  auto w = writer(table);
  if (!w) return w.status();
  std::erase_if((*w)->mutable_indexes(), [&](const TableIndex& x) { return x.name() == name; });
  changed_ = true;
  return {};
}

Result<std::vector<IndexDescription>> Transaction::describe_indexes(std::string_view table) const {
  auto t = find_table(table);
  if (!t) return t.error();
  return (*t)->describe_indexes();
}

void Transaction::note_unique(const TableVersion& t, std::uint64_t id) {
  for (const auto& ix : t.indexes())
    if (ix.unique()) pending_unique_.push_back({t.name(), ix.name(), id});
}

Status Transaction::check_unique() {
  TICKDB_TRY(check_open());
  TICKDB_TRY(settle_indexes());
  for (const auto& name : unique_all_) {
    auto it = tables_.find(name);
    if (it == tables_.end()) continue;
    for (const auto& ix : it->second->indexes()) TICKDB_TRY(ix.check_unique_all(*it->second));
  }
  unique_all_.clear();
  std::vector<std::byte> value;
  for (const auto& p : pending_unique_) {
    auto it = tables_.find(p.table);
    if (it == tables_.end()) continue;
    const TableVersion& t = *it->second;
    const TableIndex* ix = t.find_index(p.index);
    if (!ix) continue;
    auto rec = t.get(p.id);
    if (!rec) continue;
    value.resize(ix->layout().value_size());
    ix->layout().encode_values(rec->data(), value.data());
    auto ids = ix->ids_with_value(value.data(), 2);
    if (ids.size() >= 2) return unique_violation(t, *ix, ids[0], ids[1]);
  }
  pending_unique_.clear();
  return {};
}

std::vector<std::uint64_t> Transaction::referencing(const Relation& r, std::uint64_t to_id) const {
  const TableVersion* from = this->table(r.from_table);
  std::vector<std::uint64_t> out;
  if (!from) return out;
  for (const auto& ix : from->indexes())
    if (ix.def().auto_ && ix.def().fields.front() == r.from_field) {
      std::byte v[8], key[8];
      store<std::uint64_t>(v, to_id);
      encode_part_to(ix.layout().parts().front().loc.type, v, key);
      return ix.ids_with_value(key, std::numeric_limits<std::size_t>::max());
    }
  // No automatic index (it is made with the relation): scan.
  auto acc = FieldAccessor<std::uint64_t>::resolve(*from->schema(), r.from_field);
  if (!acc) return out;
  for (const RecordView rec : *from)
    if (acc->get(rec.data()) == to_id) out.push_back(rec.id());
  return out;
}

Status Transaction::reserve(std::string_view table, std::uint64_t records) {
  TICKDB_TRY(check_open());
  if (limits_) {
    auto t = find_table(table);
    if (!t) return t.error();
    const std::uint64_t rs = (*t)->record_size();
    TICKDB_TRY(check_write(records > UINT64_MAX / rs ? UINT64_MAX : records * rs));
  }
  auto w = writer(table);
  if (!w) return w.error();
  TICKDB_TRY((*w)->reserve(records));  // leaves the table as it was on failure
  changed_ = true;
  return {};
}

Status Transaction::shrink_to_fit(std::string_view table) {
  TICKDB_TRY(check_open());
  auto w = writer(table);
  if (!w) return w.error();
  (*w)->shrink_to_fit();
  changed_ = true;
  return {};
}

// ---------------- records ----------------

Status Transaction::check_references(const TableVersion& t,
                                     std::span<const std::byte> record) const {
  for (const auto& [id, r] : *relations_) {
    if (r.from_table != t.name()) continue;
    auto loc = t.schema()->locate(r.from_field);
    if (!loc) return make_error(Errc::internal, "relation field vanished");
    auto v = load<std::uint64_t>(record.data() + loc->offset);
    if (v == 0) continue;
    const TableVersion* to = table(r.to_table);
    if (!to || !to->contains(v))
      return make_error(Errc::foreign_key_violation,
                        "field '" + r.from_field + "' = " + std::to_string(v) +
                            " names no record of table '" + r.to_table + "' (relation " +
                            std::to_string(id) + ")");
  }
  return {};
}

Result<std::uint64_t> Transaction::insert(std::string_view table, std::span<const std::byte> record,
                                          std::optional<std::uint64_t> id) {
  TICKDB_TRY(check_write(record.size()));
  auto t = find_table(table);
  if (!t) return t.error();
  const TableVersion& tv = **t;
  if (record.size() != tv.record_size())
    return make_error(Errc::invalid_argument, "record has " + std::to_string(record.size()) +
                                                  " bytes, table '" + std::string(table) +
                                                  "' needs " + std::to_string(tv.record_size()));
  TICKDB_TRY(validate_record_bytes(tv.schema()->fields(), record));
  std::uint64_t new_id = tv.next_id();
  if (id) {
    if (*id == 0) return make_error(Errc::invalid_argument, "id 0 means no record; ids start at 1");
    if (*id == std::numeric_limits<std::uint64_t>::max())
      return make_error(Errc::invalid_argument, "id 18446744073709551615 is reserved");
    if (tv.contains(*id))
      return make_error(Errc::already_exists, rec_name(table, *id) + " already exists");
    if (*id < tv.next_id())
      return make_error(Errc::already_exists, "id " + std::to_string(*id) + " of table '" +
                                                  std::string(table) + "' is below its next id " +
                                                  std::to_string(tv.next_id()) +
                                                  ": ids are never reused and rise within a table");
    new_id = *id;
  } else if (new_id == std::numeric_limits<std::uint64_t>::max()) {
    return make_error(Errc::resource_exhausted,
                      "table '" + std::string(table) + "' has used every id");
  }
  TICKDB_TRY(check_references(tv, record));
  TICKDB_TRY(settle_indexes());
  auto w = writer(table);
  if (!w) return w.error();
  auto s = (*w)->append(record, new_id);
  if (!s) return poison(s).error();
  if (!(*w)->indexes().empty()) {
    if (auto si = (*w)->index_insert(record.data(), new_id); !si) return poison(si).error();
    note_unique(**w, new_id);
  }
  changed_ = true;
  return new_id;
}

Status Transaction::update(std::string_view table, std::uint64_t id,
                           std::span<const std::byte> record) {
  TICKDB_TRY(check_write(record.size()));
  auto t = find_table(table);
  if (!t) return t.error();
  const TableVersion& tv = **t;
  auto slot = tv.find_slot(id);
  if (!slot) return make_error(Errc::not_found, rec_name(table, id) + " does not exist");
  if (record.size() != tv.record_size())
    return make_error(Errc::invalid_argument, "record has " + std::to_string(record.size()) +
                                                  " bytes, table '" + std::string(table) +
                                                  "' needs " + std::to_string(tv.record_size()));
  TICKDB_TRY(validate_record_bytes(tv.schema()->fields(), record));
  TICKDB_TRY(check_references(tv, record));
  TICKDB_TRY(settle_indexes());
  auto w = writer(table);
  if (!w) return w.error();
  const bool indexed = !(*w)->indexes().empty();
  if (indexed) {  // the old bytes, before the write overwrites them (the chunk may be ours)
    RecordView was = (*w)->slot_unchecked(*slot);
    scratch_.assign(was.data(), was.data() + record.size());
  }
  auto p = (*w)->mutable_slot(*slot);
  if (!p) return poison(p.status());
  if (!record.empty()) std::memcpy(*p, record.data(), record.size());
  if (indexed) {
    std::vector<std::string> uniq;
    TICKDB_TRY(poison((*w)->index_update(scratch_.data(), record.data(), id, &uniq)));
    for (auto& u : uniq) pending_unique_.push_back({std::string(table), std::move(u), id});
  }
  changed_ = true;
  return {};
}

Status Transaction::erase(std::string_view table, std::uint64_t id) {
  TICKDB_TRY(check_open());
  TICKDB_TRY(settle_indexes());
  auto t = find_table(table);
  if (!t) return t.error();
  if (!(*t)->contains(id))
    return make_error(Errc::not_found, rec_name(table, id) + " does not exist");

  // 1. The closure of cascades: every record this delete removes, by table. A worklist of
  //    doomed records; the referencing records of each come from the relation's automatic
  //    index, so a chain of n records costs O(n log n).
  std::map<std::string, std::unordered_set<std::uint64_t>, std::less<>> doomed;
  std::vector<std::pair<std::string, std::uint64_t>> work;
  doomed[std::string(table)].insert(id);
  work.emplace_back(std::string(table), id);
  while (!work.empty()) {
    auto [tname, did] = std::move(work.back());
    work.pop_back();
    for (const auto& [rid, r] : *relations_) {
      if (r.on_delete != OnDelete::cascade || r.to_table != tname) continue;
      auto& from_set = doomed[r.from_table];
      for (std::uint64_t ref : referencing(r, did))
        if (from_set.insert(ref).second) work.emplace_back(r.from_table, ref);
    }
  }

  // 2. Restrict and set_zero against the records that stay.
  struct Zero {
    std::string table;
    std::uint64_t id;
    std::uint32_t offset;
  };
  std::vector<Zero> zeros;
  for (const auto& [rid, r] : *relations_) {
    if (r.on_delete == OnDelete::cascade) continue;
    auto d = doomed.find(r.to_table);
    if (d == doomed.end() || d->second.empty()) continue;
    const TableVersion* from = this->table(r.from_table);
    auto loc = from->schema()->locate(r.from_field);
    if (!loc) return make_error(Errc::internal, "relation field vanished");
    auto fd = doomed.find(r.from_table);
    std::vector<std::uint64_t> targets(d->second.begin(), d->second.end());
    std::sort(targets.begin(), targets.end());
    for (std::uint64_t v : targets)
      for (std::uint64_t ref : referencing(r, v)) {
        if (fd != doomed.end() && fd->second.count(ref)) continue;
        if (r.on_delete == OnDelete::restrict)
          return make_error(Errc::foreign_key_violation,
                            rec_name(r.to_table, v) + " is referenced by " +
                                rec_name(r.from_table, ref) + " (relation " + std::to_string(rid) +
                                ", on_delete restrict)");
        zeros.push_back({r.from_table, ref, loc->offset});
      }
  }

  // 3. Apply: nothing above changed anything; from here on only memory can fail.
  for (const auto& z : zeros) {
    auto w = writer(z.table);
    if (!w) return poison(w.status());
    auto slot = (*w)->find_slot(z.id);
    if (!slot) continue;
    const bool indexed = !(*w)->indexes().empty();
    if (indexed) {
      RecordView was = (*w)->slot_unchecked(*slot);
      scratch_.assign(was.data(), was.data() + (*w)->record_size());
    }
    auto p = (*w)->mutable_slot(*slot);
    if (!p) return poison(p.status());
    store<std::uint64_t>(*p + z.offset, 0);
    if (indexed) {
      std::vector<std::string> uniq;
      TICKDB_TRY(poison((*w)->index_update(scratch_.data(), *p, z.id, &uniq)));
      for (auto& u : uniq) pending_unique_.push_back({z.table, std::move(u), z.id});
    }
  }
  for (const auto& [tname, ids] : doomed) {
    if (ids.empty()) continue;
    auto w = writer(tname);
    if (!w) return poison(w.status());
    const bool indexed = !(*w)->indexes().empty();
    for (std::uint64_t rid : ids) {
      auto slot = (*w)->find_slot(rid);
      if (!slot) continue;
      if (indexed) TICKDB_TRY(poison((*w)->index_erase((*w)->slot_unchecked(*slot).data(), rid)));
      TICKDB_TRY(poison((*w)->kill_slot(*slot)));
    }
  }
  changed_ = true;
  return {};
}

Result<std::shared_ptr<const DbVersion>> Transaction::commit() {
  TICKDB_TRY(check_open());
  if (auto s = check_unique(); !s) {
    committed_ = true;
    return s.error();
  }
  committed_ = true;
  if (!changed_) return base_;
  auto v = std::make_shared<DbVersion>();
  v->version_ = base_->version_ + 1;
  v->types_ = types_;
  v->tables_ = std::move(tables_);
  v->relations_ = relations_;
  v->next_relation_id_ = next_relation_id_;
  writers_.clear();
  return std::shared_ptr<const DbVersion>(std::move(v));
}

}  // namespace tickdb
