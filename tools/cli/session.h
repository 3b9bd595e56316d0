// What one run of tickdb-cli (a command from argv, or a whole prompt session) shares between
// its commands: the node's address and token, the output mode, and the one connection to the
// node, opened on first use and kept for the next command.
//
// Thread-safety: a Session belongs to the thread that runs the commands.
#pragma once

#include <iostream>
#include <memory>
#include <string>
#include "tools/cli/json.h"

#include "tools/cli/http_client.h"
#include "tools/cli/node_client.h"

namespace tickdb::cli {

struct Settings {
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  bool json = false;
  int timeout_ms = 30000;
};

class Session {
 public:
  explicit Session(Settings s) : settings(std::move(s)) {}

  Settings settings;  // of the command running now (a prompt line may override its own)
  std::ostream& out = std::cout;
  std::ostream& err = std::cerr;

  // The client for settings.url/token, made anew when they changed.
  NodeClient& node();
  // The answer for scripts (one line of JSON) or for people (aligned text).
  void emit(const json& value);

 private:
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<NodeClient> node_;
  std::string made_for_;
};

}  // namespace tickdb::cli
