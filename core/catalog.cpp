#include "core/catalog.h"

namespace tickdb {

std::string_view on_delete_name(OnDelete o) {
  switch (o) {
    case OnDelete::restrict: return "restrict";
    case OnDelete::cascade: return "cascade";
    case OnDelete::set_zero: return "set_zero";
  }
  return "restrict";
}

std::optional<OnDelete> on_delete_from_name(std::string_view s) {
  if (s == "restrict") return OnDelete::restrict;
  if (s == "cascade") return OnDelete::cascade;
  if (s == "set_zero") return OnDelete::set_zero;
  return std::nullopt;
}

std::shared_ptr<const DbVersion> DbVersion::with_version(const std::shared_ptr<const DbVersion>& v,
                                                         std::uint64_t version) {
  auto copy = std::make_shared<DbVersion>(*v);
  copy->version_ = version;
  return copy;
}

std::shared_ptr<const DbVersion> DbVersion::empty() {
  auto v = std::make_shared<DbVersion>();
  v->types_ = std::make_shared<TypeRegistry>();
  v->relations_ = std::make_shared<RelationMap>();
  return v;
}

Result<const TableVersion*> DbVersion::find_table(std::string_view name) const {
  if (auto* t = table(name)) return t;
  return make_error(Errc::not_found, "table '" + std::string(name.substr(0, 80)) + "' does not exist");
}

Result<std::shared_ptr<const DbVersion>> DbVersion::rebase(const DbVersion& base, const DbVersion& mine,
                                                          const DbVersion& current,
                                                          const TouchSet& touched) {
  auto conflict = [](const std::string& what) {
    return make_error(Errc::conflict, "concurrent change: " + what);
  };
  if (touched.all) return conflict("the transaction looked at every table");
  if (base.types_ != current.types_) return conflict("types changed");
  if (base.relations_ != current.relations_) return conflict("relations changed");
  for (const auto& name : touched.tables)
    if (base.table_shared(name) != current.table_shared(name)) return conflict("table '" + name + "' changed");
  auto v = std::make_shared<DbVersion>();
  v->version_ = current.version_ + 1;
  v->types_ = mine.types_;
  v->relations_ = mine.relations_;
  v->next_relation_id_ = mine.next_relation_id_;
  v->tables_ = current.tables_;
  for (const auto& name : touched.tables) {
    auto m = mine.tables_.find(name);
    if (m == mine.tables_.end())
      v->tables_.erase(name);
    else
      v->tables_.insert_or_assign(name, m->second);
  }
  return std::shared_ptr<const DbVersion>(std::move(v));
}

}  // namespace tickdb
