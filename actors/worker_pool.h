// WorkerPool: `workers.count` worker actors that run the tasks of parallel procedures.
//
// run(n, task) hands the n numbered tasks to up to count() workers (each worker takes the
// next undone task until none is left) and returns when all have finished. The calling thread
// waits for them, so call run() from the executor (a detached thread) or any non-actor
// thread, never from a worker itself. A task that fails or throws makes run() return that
// error once every task has stopped.
//
// Thread-safety: run() is safe from several threads at once (their tasks interleave).
#pragma once

#include <memory>
#include <vector>

#include "actors/procedures.h"

namespace caf {
class actor_system;
}

namespace tickdb {

class WorkerPool final : public ParallelRunner {
 public:
  WorkerPool(caf::actor_system& sys, std::size_t count);
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  std::size_t workers() const override;
  Status run(std::size_t n, const std::function<Status(std::size_t)>& task) override;
  // Tasks run since start (for stats).
  std::uint64_t tasks_run() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tickdb
