#include "core/version_diff.h"

#include <new>
#include <string>

namespace tickdb {

namespace {
Error not_comparable(const TableVersion& after, const std::string& why) {
  return Error{Errc::conflict, "table '" + after.name() +
                                   "': the versions are not comparable slot by slot (" + why +
                                   "): send a reset"};
}
}  // namespace

Status check_comparable(const TableVersion& before, const TableVersion& after) {
  if (&before == &after) return {};
  if (before.schema() != after.schema() || before.record_size() != after.record_size() ||
      before.records_per_chunk() != after.records_per_chunk())
    return not_comparable(after, "the schema changed");
  if (after.slots() < before.slots())
    return not_comparable(after, "slots were dropped (re-laid out or reloaded)");
  if (after.next_id() < before.next_id())
    return not_comparable(after, "`after` is older than `before`");
  if (before.slots() == 0) return {};
  // A relayout keeps ids but moves them to other slots: check both ends of before's range.
  for (const std::uint64_t s : {std::uint64_t{0}, before.slots() - 1})
    if (before.slot_unchecked(s).id() != after.slot_unchecked(s).id())
      return not_comparable(after, "ids differ at slot " + std::to_string(s));
  return {};
}

Status diff_detail::ids_differ(const TableVersion& after, std::size_t chunk) {
  return not_comparable(after, "ids differ in chunk " + std::to_string(chunk));
}

Result<std::vector<RecordChange>> collect_changes(const TableVersion& before,
                                                  const TableVersion& after) {
  try {
    std::vector<RecordChange> out;
    auto st =
        diff_tables(before, after, [&](std::uint64_t id, const std::byte* b, const std::byte* a) {
          out.push_back({id, b, a});
        });
    if (!st) return st.error();
    return out;
  } catch (const std::bad_alloc&) {
    return make_error(Errc::resource_exhausted,
                      "out of memory collecting the changes of table '" + after.name() + "'");
  }
}

Result<SubscriptionClassifier> SubscriptionClassifier::make(
    std::shared_ptr<const TableSchema> schema, std::shared_ptr<const CompiledFilter> filter,
    std::vector<ByteRange> projection) {
  if (!schema) return make_error(Errc::invalid_argument, "subscription: no schema");
  const std::uint32_t rs = schema->record_size();
  for (const ByteRange& r : projection)
    if (r.offset > rs || r.size > rs - r.offset)
      return make_error(Errc::invalid_argument,
                        "subscription: selected bytes [" + std::to_string(r.offset) + ", " +
                            std::to_string(std::uint64_t{r.offset} + r.size) +
                            ") are not inside the " + std::to_string(rs) + "-byte record of '" +
                            schema->name() + "'");
  SubscriptionClassifier c;
  if (projection.empty()) projection.push_back({0, rs});
  c.schema_ = std::move(schema);
  c.filter_ = std::move(filter);
  c.projection_ = std::move(projection);
  return c;
}

bool SubscriptionClassifier::selected_differ(const std::byte* before,
                                             const std::byte* after) const {
  for (const ByteRange& r : projection_)
    if (!diff_detail::same_bytes(before + r.offset, after + r.offset, r.size)) return true;
  return false;
}

namespace {
Status check_schema(const TableVersion& after, const SubscriptionClassifier& sub) {
  if (after.schema() == sub.schema()) return {};
  return make_error(Errc::invalid_argument,
                    "subscription: the version of table '" + after.name() +
                        "' is not of the schema the subscription was made for");
}

void add(SubscriptionDelta& d, const TableVersion& after, ChangeKind k, std::uint64_t id,
         const std::byte* rec) {
  switch (k) {
    case ChangeKind::none:
      return;
    case ChangeKind::ins:
      d.ins.emplace_back(rec, id, after.schema().get());
      return;
    case ChangeKind::upd:
      d.upd.emplace_back(rec, id, after.schema().get());
      return;
    case ChangeKind::del:
      d.del.push_back(id);
      return;
    case ChangeKind::out:
      d.out.push_back(id);
      return;
  }
}
}  // namespace

Result<SubscriptionDelta> classify_changes(std::span<const RecordChange> changes,
                                           const TableVersion& after,
                                           const SubscriptionClassifier& sub) {
  TICKDB_TRY(check_schema(after, sub));
  try {
    SubscriptionDelta d;
    for (const RecordChange& c : changes)
      add(d, after, sub.classify(c.id, c.before, c.after), c.id, c.after);
    return d;
  } catch (const std::bad_alloc&) {
    return make_error(Errc::resource_exhausted,
                      "out of memory classifying the changes of table '" + after.name() + "'");
  }
}

Result<SubscriptionDelta> subscription_delta(const TableVersion& before, const TableVersion& after,
                                             const SubscriptionClassifier& sub) {
  TICKDB_TRY(check_schema(after, sub));
  try {
    SubscriptionDelta d;
    auto st =
        diff_tables(before, after, [&](std::uint64_t id, const std::byte* b, const std::byte* a) {
          add(d, after, sub.classify(id, b, a), id, a);
        });
    if (!st) return st.error();
    return d;
  } catch (const std::bad_alloc&) {
    return make_error(Errc::resource_exhausted,
                      "out of memory building the delta of table '" + after.name() + "'");
  }
}

}  // namespace tickdb
