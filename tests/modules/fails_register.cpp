// A module whose registration fails (it asks for a name kept for built-ins).
#include "actors/module_api.h"

static tickdb::Status setup(tickdb::ModuleContext& m) {
  tickdb::Callable c;
  c.name = "db.mine";
  c.fn = [](tickdb::CallContext&, const tickdb::json&) -> tickdb::Result<tickdb::json> { return tickdb::json(1); };
  return m.registry().add(std::move(c));
}

TICKDB_MODULE(setup)
