// AllocBudget: bounds the heap memory one procedure call may take (procedures.max_alloc_bytes).
//
// A procedure is native code: a loop that grows a std::vector without end would take the
// machine's memory until the kernel kills the node. While a budget is on, every operator new
// on this thread is counted (net of the operator deletes on it); once the call holds more than
// the budget, operator new throws std::bad_alloc, which invoke() turns into a failed call
// (resource_exhausted inside procedure_failed) whose transaction is rolled back. The node
// lives; the memory the call held is freed as it unwinds.
//
// The counting is done by the program, which replaces operator new and delete
// (tools/server/alloc_counting.cpp, in tickdb-server). In a program without it (the unit
// tests, sanitizer builds, which replace operator new themselves) begin() answers false and
// nothing is bounded. Work a call hands to other threads (parallel updates on the workers) is
// not counted.
//
// Thread-safety: a budget belongs to the thread that began it.
#pragma once

#include <cstdint>

namespace tickdb {

// Starts counting this thread's allocations against `bytes`; false when this program does
// not count (then end() need not be called).
bool alloc_budget_begin(std::uint64_t bytes);
// Stops counting on this thread.
void alloc_budget_end();
// Whether this program counts (tickdb-server in a release build).
bool alloc_budget_available();

}  // namespace tickdb
