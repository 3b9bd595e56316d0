#include "core/projection.h"

#include <cstring>

#include "core/json_codec.h"

namespace tickdb {

struct Projection::Level {
  struct Item {
    std::string name;
    bool whole = false;
    FieldLoc loc;
    std::unique_ptr<Level> sub;
  };
  std::vector<Item> items;

  Item& at(std::string_view name) {
    for (auto& i : items)
      if (i.name == name) return i;
    items.push_back(Item{std::string(name), false, {}, nullptr});
    return items.back();
  }
  void add(const std::string& path, const FieldLoc& loc) {
    Level* level = this;
    std::size_t start = 0;
    while (true) {
      const auto dot = path.find('.', start);
      Item& item = level->at(std::string_view(path).substr(
          start, dot == std::string::npos ? std::string::npos : dot - start));
      if (item.whole) return;  // the whole value is selected already
      if (dot == std::string::npos) {
        item.whole = true;
        item.loc = loc;
        item.sub.reset();
        return;
      }
      if (!item.sub) item.sub = std::make_unique<Level>();
      level = item.sub.get();
      start = dot + 1;
    }
  }
  void emit(std::string& out, const std::byte* rec, bool leading_comma) const {
    bool first = !leading_comma;
    for (const auto& i : items) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, i.name);
      out += ':';
      if (i.whole) {
        append_value_json(out, i.loc.type, rec + i.loc.offset);
      } else {
        out += '{';
        i.sub->emit(out, rec, false);
        out += '}';
      }
    }
  }
};

Result<Projection> Projection::make(const TableSchema& schema,
                                    const std::vector<std::string>& select) {
  Projection p;
  p.schema_ = &schema;
  bool any = false;
  auto root = std::make_shared<Level>();
  for (const auto& s : select) {
    if (s == "id") continue;
    auto loc = schema.locate(s);
    if (!loc) return make_error(Errc::invalid_argument, "select: " + loc.message());
    root->add(s, *loc);
    p.ranges_.emplace_back(loc->offset, loc->type.size);
    any = true;
  }
  if (select.empty()) {
    p.ranges_.emplace_back(0, schema.record_size());
  } else {
    p.all_ = false;
    p.root_ = std::move(root);
    if (!any) p.ranges_.clear();  // only the id: no field change matters
  }
  return p;
}

void Projection::append_record(std::string& out, const std::byte* record, std::uint64_t id) const {
  if (all_) {
    append_record_json(out, RecordView(record, id, schema_));
    return;
  }
  out += "{\"id\":";
  out += std::to_string(id);
  root_->emit(out, record, true);
  out += '}';
}

bool Projection::differs(const std::byte* a, const std::byte* b) const {
  for (const auto& [off, size] : ranges_)
    if (std::memcmp(a + off, b + off, size) != 0) return true;
  return false;
}

}  // namespace tickdb
