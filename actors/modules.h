// Loading procedure modules (see module_api.h): dlopen each file named in
// procedures.modules, check its ABI, let it register its procedures.
//
// Every failure names the file: a file that cannot be loaded (missing, not a shared library,
// unresolved symbols), one without tickdb_module_register, one built for another ABI, one
// whose registration fails. A module whose registration fails may have registered some of its
// procedures already: start-up must stop then (the runtime does).
//
// Thread-safety: load at start-up, from one thread. Loaded modules stay loaded until the
// ModuleSet is destroyed (after every actor has stopped: their code is in there).
#pragma once

#include <string>
#include <vector>

#include "actors/procedures.h"

namespace tickdb {

class ModuleSet {
 public:
  ModuleSet() = default;
  ModuleSet(const ModuleSet&) = delete;
  ModuleSet& operator=(const ModuleSet&) = delete;
  ~ModuleSet();

  // invalid_argument naming `path` and what is wrong.
  Status load(const std::string& path, Registry& reg);
  std::size_t size() const { return handles_.size(); }

 private:
  std::vector<void*> handles_;
};

}  // namespace tickdb
