#include "actors/worker_pool.h"

#include <atomic>
#include <latch>
#include <mutex>

#include "actors/messages.h"

namespace tickdb {

namespace {

struct Job {
  Job(std::size_t n, const std::function<Status(std::size_t)>& task, std::ptrdiff_t workers)
      : n(n), task(&task), done(workers) {}
  const std::size_t n;
  const std::function<Status(std::size_t)>* task;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status error;
  std::latch done;

  void fail(Status s) {
    std::lock_guard lock(mu);
    if (!failed.exchange(true)) error = std::move(s);
  }
  // One worker's share: take tasks until none is left (or one has failed).
  void work(std::atomic<std::uint64_t>& counter) {
    for (std::size_t i; !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < n;) {
      try {
        Status s = (*task)(i);
        if (!s) fail(std::move(s));
      } catch (const std::bad_alloc&) {
        fail(make_error(Errc::resource_exhausted, "out of memory in a parallel task"));
      } catch (const std::exception& e) {
        fail(make_error(Errc::internal, std::string("a parallel task threw: ") + e.what()));
      } catch (...) {
        fail(make_error(Errc::internal, "a parallel task threw a non-standard exception"));
      }
      counter.fetch_add(1, std::memory_order_relaxed);
    }
    done.count_down();
  }
};

using JobPtr = std::shared_ptr<Job>;

}  // namespace
}  // namespace tickdb

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(tickdb::JobPtr)

namespace tickdb {

using worker_actor = caf::typed_actor<caf::reacts_to<work_atom, JobPtr>>;

struct WorkerPool::Impl {
  std::vector<worker_actor> workers;
  std::atomic<std::uint64_t> tasks{0};
};

namespace {
// Spawned with an argument: CAF 0.17's init_fun_factory binds a null reference for an actor
// spawned without any (UBSan reports it).
worker_actor::behavior_type worker_impl(worker_actor::pointer self,
                                        std::atomic<std::uint64_t>* tasks) {
  return {[self, tasks](work_atom, JobPtr& job) {
    (void)self;  // used by TICKDB_MAILBOX_RECEIVE in TSan builds only (clang warns otherwise)
    TICKDB_MAILBOX_RECEIVE(self);
    job->work(*tasks);
  }};
}
}  // namespace

WorkerPool::WorkerPool(caf::actor_system& sys, std::size_t count)
    : impl_(std::make_unique<Impl>()) {
  if (count == 0) count = 1;
  for (std::size_t i = 0; i < count; ++i)
    impl_->workers.push_back(sys.spawn(worker_impl, &impl_->tasks));
}

WorkerPool::~WorkerPool() {
  for (auto& w : impl_->workers) caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

std::size_t WorkerPool::workers() const {
  return impl_->workers.size();
}

std::uint64_t WorkerPool::tasks_run() const {
  return impl_->tasks.load(std::memory_order_relaxed);
}

Status WorkerPool::run(std::size_t n, const std::function<Status(std::size_t)>& task) {
  if (n == 0) return {};
  const std::size_t k = std::min(n, impl_->workers.size());
  auto job = std::make_shared<Job>(n, task, static_cast<std::ptrdiff_t>(k));
  for (std::size_t w = 0; w < k; ++w) post(impl_->workers[w], work_atom::value, job);
  job->done.wait();
  std::lock_guard lock(job->mu);
  return job->error;
}

}  // namespace tickdb
