#include "tools/cli/progress_bar.h"

#include <unistd.h>

#include <cstdio>

namespace tickdb::cli {

namespace {

std::string duration_text(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(std::string label, std::uint64_t total)
    : label_(std::move(label)),
      total_(total),
      active_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_() {}

void ProgressBar::update(std::uint64_t done, std::uint64_t records, bool force) {
  if (!active_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(records) / secs : 0;
  std::string line = "\r" + label_ + " ";
  if (total_ > 0) {
    const double frac =
        done >= total_ ? 1.0 : static_cast<double>(done) / static_cast<double>(total_);
    const int width = 30, filled = static_cast<int>(frac * width);
    line += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%% ", static_cast<int>(frac * 100));
    line += pct;
    const double eta = frac > 0 ? secs * (1 - frac) / frac : 0;
    char tail[96];
    std::snprintf(tail, sizeof tail, "%llu records, %.0f/s, ETA %s",
                  static_cast<unsigned long long>(records), rate, duration_text(eta).c_str());
    line += tail;
  } else {
    char tail[96];
    std::snprintf(tail, sizeof tail, "%llu records, %.0f/s, %s",
                  static_cast<unsigned long long>(records), rate, duration_text(secs).c_str());
    line += tail;
  }
  line += "\033[K";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!active_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  active_ = false;
}

}  // namespace tickdb::cli
