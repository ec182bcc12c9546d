#include "loadgen/load_runner.h"

#include "core/error.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace ep::loadgen {
namespace {

// Requests released at their send time to a pool of workers, one per concurrency slot: a
// request waits in the queue while every worker is busy.
class Dispatch {
 public:
  explicit Dispatch(size_t n) : n_(n) {}

  void release(size_t i) {
    std::lock_guard lock(mu_);
    ready_.push_back(i);
    cv_.notify_one();
  }
  // The next released request, or nullopt once all have been handed out.
  std::optional<size_t> next() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return head_ < ready_.size() || handed_ == n_; });
    if (handed_ == n_) return std::nullopt;
    ++handed_;
    const size_t i = ready_[head_++];
    if (handed_ == n_) cv_.notify_all();
    return i;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> ready_;
  size_t head_ = 0, handed_ = 0;
  const size_t n_;
};

std::vector<RequestRecord> run_phase(const std::vector<Target>& targets,
                                     const std::vector<nlohmann::json>& bodies,
                                     const std::vector<size_t>& prompt_lens,
                                     const std::vector<double>& send_times_s,
                                     size_t max_concurrency, Clock::time_point start,
                                     const std::function<void(size_t, size_t)>& progress) {
  const size_t n = bodies.size();
  std::vector<RequestRecord> records(n);
  if (n == 0) return records;
  Dispatch dispatch(n);
  const size_t n_workers = max_concurrency == 0 ? n : std::min(n, max_concurrency);
  std::mutex progress_mu;
  size_t done = 0;
  std::vector<std::thread> workers;
  workers.reserve(n_workers);
  for (size_t w = 0; w < n_workers; ++w) {
    workers.emplace_back([&] {
      while (const std::optional<size_t> i = dispatch.next()) {
        const size_t server = *i % targets.size();
        records[*i] = send_streaming(targets[server], bodies[*i], prompt_lens[*i], start);
        records[*i].scheduled_s = send_times_s[*i];
        records[*i].server = server;
        std::lock_guard lock(progress_mu);
        ++done;
        if (progress) progress(done, n);
      }
    });
  }
  for (size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(send_times_s[i])));
    dispatch.release(i);
  }
  for (auto& t : workers) t.join();
  return records;
}

}  // namespace

RunResult run_benchmark(const std::vector<Target>& targets, const RunPlan& plan,
                        const std::function<void(size_t, size_t)>& progress) {
  const size_t n = plan.bodies.size();
  if (targets.empty()) fail("run_benchmark: no server to send to");
  if (plan.prompt_lens.size() != n || plan.send_times_s.size() != n) {
    fail("run_benchmark: {} bodies, {} prompt lengths and {} send times", n,
         plan.prompt_lens.size(), plan.send_times_s.size());
  }
  if (plan.warmup > 0 && n > 0) {
    std::vector<nlohmann::json> bodies;
    std::vector<size_t> lens;
    for (size_t i = 0; i < plan.warmup; ++i) {
      bodies.push_back(plan.bodies[i % n]);
      lens.push_back(plan.prompt_lens[i % n]);
    }
    run_phase(targets, bodies, lens, std::vector<double>(plan.warmup, 0.0), plan.max_concurrency,
              Clock::now(), nullptr);
  }
  if (plan.before_run) plan.before_run();
  RunResult result;
  const Clock::time_point start = Clock::now();
  result.records = run_phase(targets, plan.bodies, plan.prompt_lens, plan.send_times_s,
                             plan.max_concurrency, start, progress);
  result.duration_s = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace ep::loadgen
