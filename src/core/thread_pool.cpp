#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define EP_CPU_RELAX() _mm_pause()
#else
#define EP_CPU_RELAX() std::this_thread::yield()
#endif

namespace ep {
namespace {

constexpr uint64_t kGenMask = (uint64_t(1) << 24) - 1;
constexpr int64_t kMaxChunks = (int64_t(1) << 20) - 1;

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  wake_.fetch_add(1);
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::default_threads() {
  return std::max(1, int(std::thread::hardware_concurrency()));
}

// A worker that wakes late (descheduled on a busy machine) validates the generation in the same
// compare-and-swap that claims a chunk, so it can never run a chunk of a job other than the one
// it saw. The caller waits only for claimed chunks to finish, never for idle workers to check
// in: a worker that is not running when a job starts simply misses it, and the caller does its
// share.
void ThreadPool::work(uint64_t gen) {
  for (;;) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    int64_t chunk;
    for (;;) {
      if ((t >> 40) != gen) return;
      chunk = int64_t(t & 0xfffff);
      if (chunk >= int64_t((t >> 20) & 0xfffff)) return;
      if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) break;
    }
    if (!failed_.load(std::memory_order_relaxed)) {
      const int64_t begin = chunk * grain_;
      try {
        (*fn_)(begin, std::min(n_, begin + grain_));
      } catch (...) {
        std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true);
      }
    }
    done_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::worker_loop() {
  uint32_t seen = 0;  // wake_ at construction: jobs may start before this thread runs
  for (;;) {
    // Spin for a while (calls come back to back during a forward pass), then sleep.
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; wake_.load(std::memory_order_acquire) == seen; ++i) {
      EP_CPU_RELAX();
      if ((i & 255) == 255 &&
          std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(300)) {
        sleepers_.fetch_add(1);
        wake_.wait(seen);
        sleepers_.fetch_sub(1);
      }
    }
    seen = wake_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    work(ticket_.load(std::memory_order_acquire) >> 40);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard job(job_mutex_);
  int64_t n_chunks = (n + grain - 1) / grain;
  if (n_chunks > kMaxChunks) {
    grain = (n + kMaxChunks - 1) / kMaxChunks;
    n_chunks = (n + grain - 1) / grain;
  }
  fn_ = &fn;
  n_ = n;
  grain_ = grain;
  error_ = nullptr;
  failed_.store(false, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  gen_ = (gen_ + 1) & kGenMask;
  ticket_.store((gen_ << 40) | (uint64_t(n_chunks) << 20), std::memory_order_release);
  wake_.fetch_add(1);  // seq_cst: ordered before the sleeper check below
  if (sleepers_.load() > 0) wake_.notify_all();
  work(gen_);
  for (int spins = 0; done_.load(std::memory_order_acquire) < n_chunks; ++spins) {
    if (spins < 2048)
      EP_CPU_RELAX();
    else
      std::this_thread::yield();  // a worker holding a chunk was descheduled
  }
  fn_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

}  // namespace ep
