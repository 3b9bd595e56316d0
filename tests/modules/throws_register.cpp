// A module whose registration throws.
#include <stdexcept>

#include "actors/module_api.h"

static tickdb::Status setup(tickdb::ModuleContext&) { throw std::runtime_error("no config for me"); }

TICKDB_MODULE(setup)
