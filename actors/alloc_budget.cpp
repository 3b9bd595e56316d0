#include "actors/alloc_budget.h"

// Defined by a program that counts its allocations (tools/server/alloc_counting.cpp); absent
// (null) elsewhere.
extern "C" {
__attribute__((weak)) bool tickdb_alloc_budget_begin(std::uint64_t bytes);
__attribute__((weak)) void tickdb_alloc_budget_end();
}

namespace tickdb {

bool alloc_budget_available() {
  return tickdb_alloc_budget_begin != nullptr;
}

bool alloc_budget_begin(std::uint64_t bytes) {
  return tickdb_alloc_budget_begin ? tickdb_alloc_budget_begin(bytes) : false;
}

void alloc_budget_end() {
  if (tickdb_alloc_budget_end) tickdb_alloc_budget_end();
}

}  // namespace tickdb
