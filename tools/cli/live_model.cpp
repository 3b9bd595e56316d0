#include "tools/cli/live_model.h"

namespace tickdb::cli {

void LiveModel::add_rows(const json& rows) {
  for (const auto& r : rows)
    if (r.is_object() && r.contains("id")) rows_[r["id"].get<std::uint64_t>()] = r;
}

std::size_t LiveModel::apply(const json& changes) {
  std::size_t n = 0;
  for (const char* kind : {"ins", "upd"})
    if (auto it = changes.find(kind); it != changes.end()) {
      add_rows(*it);
      n += it->size();
    }
  for (const char* kind : {"del", "out"})
    if (auto it = changes.find(kind); it != changes.end())
      for (const auto& id : *it) {
        rows_.erase(id.get<std::uint64_t>());
        ++n;
      }
  return n;
}

json LiveModel::to_json() const {
  json a = json::array();
  for (const auto& [id, row] : rows_) a.push_back(row);
  return a;
}

}  // namespace tickdb::cli
