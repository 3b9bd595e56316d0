#include "actors/modules.h"

#include <dlfcn.h>

#include "actors/module_api.h"

namespace tickdb {

ModuleSet::~ModuleSet() {
  for (auto it = handles_.rbegin(); it != handles_.rend(); ++it) dlclose(*it);
}

Status ModuleSet::load(const std::string& path, Registry& reg) {
  auto fail = [&](const std::string& why) {
    return make_error(Errc::invalid_argument, "procedure module '" + path + "': " + why);
  };
  if (path.empty()) return fail("empty path");
  // RTLD_NOW: unresolved symbols fail here, not in the middle of a call.
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    return fail(std::string("cannot be loaded: ") + (e ? e : "unknown error"));
  }
  auto reg_fn = reinterpret_cast<tickdb_module_register_fn>(dlsym(h, "tickdb_module_register"));
  if (!reg_fn) {
    dlclose(h);
    return fail("exports no tickdb_module_register (build it with TICKDB_MODULE from actors/module_api.h)");
  }
  ModuleContext ctx(reg, path);
  std::uint32_t abi = reg_fn(kModuleAbi, &ctx);
  if (abi != kModuleAbi) {
    dlclose(h);
    return fail("built for module ABI " + std::to_string(abi >> 16) + "." + std::to_string((abi >> 8) & 0xff) +
                "." + std::to_string(abi & 0xff) + ", this server has " + std::to_string(kModuleAbi >> 16) + "." +
                std::to_string((kModuleAbi >> 8) & 0xff) + "." + std::to_string(kModuleAbi & 0xff) +
                " (ABI major . compiler major . C++ string ABI): rebuild it against this tickdb");
  }
  // Keep it loaded even when registration failed: it may have registered callables already.
  handles_.push_back(h);
  if (!ctx.status) return fail("registration failed: " + ctx.status.message());
  return {};
}

}  // namespace tickdb
