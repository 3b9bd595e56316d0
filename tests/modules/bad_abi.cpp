// A module built "for another ABI": it answers a different version and registers nothing.
#include <cstdint>

namespace tickdb {
class ModuleContext;
}

extern "C" __attribute__((visibility("default"))) std::uint32_t tickdb_module_register(std::uint32_t,
                                                                                      tickdb::ModuleContext*) {
  return (99u << 16) | (7u << 8) | 0u;
}
