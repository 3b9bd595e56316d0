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

}  // namespace tickdb
