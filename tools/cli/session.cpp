#include "tools/cli/session.h"

#include "tools/cli/table_printer.h"

namespace tickdb::cli {

NodeClient& Session::node() {
  const std::string key =
      settings.url + '\n' + settings.token + '\n' + std::to_string(settings.timeout_ms);
  if (!node_ || key != made_for_) {
    node_.reset();
    http_ = std::make_unique<HttpClient>(settings.url, settings.token,
                                         std::chrono::milliseconds(settings.timeout_ms));
    node_ = std::make_unique<NodeClient>(*http_);
    made_for_ = key;
  }
  return *node_;
}

void Session::emit(const json& value) {
  if (settings.json)
    out << value.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
  else
    print_human(out, value);
  out.flush();
}

}  // namespace tickdb::cli
