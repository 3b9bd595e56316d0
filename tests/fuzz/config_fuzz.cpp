// Fuzz target: the config loader (config/config.h), as tickdb-server uses it: a config file
// read from disk (read_config_file), `--set key=value` overrides over it (apply_override),
// then config_from_json.
//
// Input: the file's text; when it holds a line "--set", each line after it is one override
// (applied to what the lines before it parsed to, or to an empty config). A config that loads
// must load again from its own to_json(), to the same to_json().
#include <unistd.h>

#include <cstdio>
#include <string>

#include "config/config.h"
#include "tests/fuzz/fuzz_common.h"

using namespace tickdb;

namespace {

std::string scratch_file() {
  static const std::string path = "/tmp/tickdb-fuzz-config-" + std::to_string(::getpid()) + ".json";
  return path;
}

void check_loads(const json& j) {
  auto cfg = config_from_json(j);
  if (!cfg) return;
  json once = cfg->to_json();
  auto again = config_from_json(once);
  TICKDB_FUZZ_CHECK(again.is_ok(), again.message() + ": " + once.dump());
  TICKDB_FUZZ_CHECK(again->to_json() == once, once.dump());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view file = in, sets;
  if (auto at = in.find("--set\n"); at != std::string_view::npos) {
    file = in.substr(0, at);
    sets = in.substr(at + 6);
  }
  const std::string path = scratch_file();
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) fuzz::fail("cannot write " + path);
    std::fwrite(file.data(), 1, file.size(), f);
    std::fclose(f);
  }
  json j = json::object();
  if (auto r = read_config_file(path)) j = std::move(*r);
  while (!sets.empty()) {
    auto nl = sets.find('\n');
    std::string line(sets.substr(0, nl));
    sets = nl == std::string_view::npos ? std::string_view{} : sets.substr(nl + 1);
    (void)apply_override(j, line);
  }
  check_loads(j);
  return 0;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)scratch_file();  // constructed before the handler is registered: destroyed after it runs
  std::atexit([] { std::remove(scratch_file().c_str()); });
  return 0;
}
