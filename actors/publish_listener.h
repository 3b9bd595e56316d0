// PublishListener: told of every version Database::publish() makes current, on the
// publishing thread right after the swap. The subscription hub is one: it wakes for the new
// version and notes when it was published, for its commit-to-wire figure.
//
// Owner: whoever sets it on the Runtime (Runtime::set_publish_listener) keeps it alive until
// it is cleared. Thread-safety: published() is called from any writer's thread, several at
// once; it must be quick and must never block (the tick loop and the table actors call it).
#pragma once

#include <cstdint>

namespace tickdb {

class PublishListener {
 public:
  virtual ~PublishListener() = default;
  virtual void published(std::uint64_t version) noexcept = 0;
};

}  // namespace tickdb
