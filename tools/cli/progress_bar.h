// A progress line on stderr for long imports and exports: a bar (when the total is known),
// the count, the rate and the time left, redrawn in place at most 10 times a second. Only on
// a terminal (isatty on stderr); elsewhere it draws nothing and the caller prints a summary.
//
// Thread-safety: one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tickdb::cli {

class ProgressBar {
 public:
  // `total` in the unit of update()'s `done` (bytes of a file, records); 0 when unknown.
  ProgressBar(std::string label, std::uint64_t total);
  ~ProgressBar() { finish(); }

  bool active() const { return active_; }
  // `done` of total; `records` so far, for the rate.
  void update(std::uint64_t done, std::uint64_t records, bool force = false);
  // Clears the line.
  void finish();

 private:
  std::string label_;
  std::uint64_t total_;
  bool active_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace tickdb::cli
