// What a procedure module includes: a shared library, named in the config
// (procedures.modules), that registers procedures when the server starts.
//
//   #include "actors/module_api.h"
//   static tickdb::Status setup(tickdb::ModuleContext& m) {
//     return m.registry().add({.name = "game.step", ..., .fn = step});
//   }
//   TICKDB_MODULE(setup)
//
// TICKDB_MODULE defines the one exported function, tickdb_module_register. The server calls
// it with its module ABI version; a module built for another version (another tickdb, another
// compiler or C++ library) returns without touching anything, and the server refuses it with
// a message naming the file. Modules link against libtickdb_core and libtickdb_actors (the
// server's own copies are used once loaded).
#pragma once

#include <cstdint>

#include "actors/procedures.h"

// Bump when anything a module sees changes layout or meaning (procedures.h, the core API).
#define TICKDB_MODULE_ABI_MAJOR 1

namespace tickdb {

// The ABI a module was built for: our major version, the compiler's major version and the C++
// library's string ABI, since modules exchange std:: and nlohmann types with the server.
constexpr std::uint32_t kModuleAbi = (std::uint32_t{TICKDB_MODULE_ABI_MAJOR} << 16) |
                                     (std::uint32_t{__GNUC__} << 8) | std::uint32_t{_GLIBCXX_USE_CXX11_ABI};

class ModuleContext {
 public:
  ModuleContext(Registry& reg, std::string path) : reg_(&reg), path_(std::move(path)) {}
  Registry& registry() { return *reg_; }
  const std::string& path() const { return path_; }
  // Set by TICKDB_MODULE: the registration function's answer.
  Status status;

 private:
  Registry* reg_;
  std::string path_;
};

}  // namespace tickdb

extern "C" {
// Returns the module's ABI. Registers only when it equals host_abi; the outcome is in
// ctx->status then.
using tickdb_module_register_fn = std::uint32_t (*)(std::uint32_t host_abi, tickdb::ModuleContext* ctx);
}

#define TICKDB_MODULE(setup_fn)                                                                     \
  extern "C" __attribute__((visibility("default"))) std::uint32_t tickdb_module_register(         \
      std::uint32_t host_abi, tickdb::ModuleContext* ctx) {                                         \
    if (host_abi != tickdb::kModuleAbi) return tickdb::kModuleAbi;                                  \
    try {                                                                                           \
      ctx->status = setup_fn(*ctx);                                                                 \
    } catch (const std::exception& e) {                                                             \
      ctx->status = tickdb::make_error(tickdb::Errc::internal, std::string("registration threw: ") + e.what()); \
    } catch (...) {                                                                                 \
      ctx->status = tickdb::make_error(tickdb::Errc::internal, "registration threw");              \
    }                                                                                               \
    return tickdb::kModuleAbi;                                                                      \
  }
