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
constexpr uint64_t kChunkMask = (uint64_t(1) << 20) - 1;  // also the most chunks per job
constexpr int64_t kWarmStepBytes = 1024;  // prefetched between two looks at the job state

struct Chunking {
  int64_t grain, n_chunks;
};

// The chunks of a job: `grain` items each, coarser when that would exceed kChunkMask chunks.
Chunking chunking(int64_t n, int64_t grain) {
  grain = std::max<int64_t>(1, grain);
  int64_t n_chunks = (n + grain - 1) / grain;
  if (n_chunks > int64_t(kChunkMask)) {
    grain = (n + int64_t(kChunkMask) - 1) / int64_t(kChunkMask);
    n_chunks = (n + grain - 1) / grain;
  }
  return {grain, n_chunks};
}

int64_t first_chunk(int64_t n_chunks, int participant, int n_threads) {
  return n_chunks * participant / n_threads;
}

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), runs_(size_t(n_threads_)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
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

// Claims the next chunk of `run` from its front (or back) if the run belongs to job `gen` and is
// not empty, and runs it. The claim keeps the job current, so its fields are stable until done_
// counts the chunk.
bool ThreadPool::run_chunk_from(Run& run, uint64_t gen, bool front) {
  uint64_t w = run.word.load(std::memory_order_acquire);
  int64_t chunk;
  for (;;) {
    if ((w >> 40) != gen) return false;
    const int64_t next = int64_t((w >> 20) & kChunkMask), end = int64_t(w & kChunkMask);
    if (next >= end) return false;
    chunk = front ? next : end - 1;
    const uint64_t claimed = front ? w + (uint64_t(1) << 20) : w - 1;
    if (run.word.compare_exchange_weak(w, claimed, std::memory_order_acq_rel)) break;
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
  return true;
}

// The caller waits only for claimed chunks to finish, never for idle workers to check in: a
// worker that is not running when a job starts (descheduled on a busy machine) simply misses it,
// and the others take its run from the back.
void ThreadPool::work(uint64_t gen, int self) {
  while (run_chunk_from(runs_[size_t(self)], gen, true)) {
  }
  for (int k = 1; k < n_threads_; ++k) {
    Run& other = runs_[size_t((self + k) % n_threads_)];
    while (run_chunk_from(other, gen, false)) {
    }
  }
}

int64_t ThreadPool::run_begin(int64_t n, int64_t grain, int participant) const {
  const Chunking c = chunking(n, grain);
  return std::min(n, first_chunk(c.n_chunks, participant, n_threads_) * c.grain);
}

bool ThreadPool::warm_step(int self) {
  Run& run = runs_[size_t(self)];
  const uint64_t seq = run.warm_seq.load(std::memory_order_acquire);
  if (seq != run.warm_seen) {  // a new warm-up, possibly of the same range again
    run.warm_seen = seq;
    run.warmed = 0;
  }
  const char* data = run.warm_data.load(std::memory_order_relaxed);
  const int64_t end =
      std::min(run.warm_bytes.load(std::memory_order_relaxed), run.warmed + kWarmStepBytes);
  if (data == nullptr || run.warmed >= end) return false;
  for (int64_t off = run.warmed; off < end; off += 64) __builtin_prefetch(data + off, 0, 1);
  run.warmed = end;
  return true;
}

void ThreadPool::worker_loop(int self) {
  uint32_t seen = 0;  // wake_ at construction: jobs may start before this thread runs
  for (;;) {
    // Warm up for the next job, spin for a while (calls come back to back during a forward
    // pass), then sleep.
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; wake_.load(std::memory_order_acquire) == seen; ++i) {
      if (warm_step(self)) continue;
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
    work(job_gen_.load(std::memory_order_acquire), self);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn,
                              std::span<const Warmup> warmup) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    fn(0, n);
    return;
  }
  std::lock_guard job(job_mutex_);
  const Chunking c = chunking(n, grain);
  const int64_t n_chunks = c.n_chunks;
  fn_ = &fn;
  n_ = n;
  grain_ = c.grain;
  for (int i = 0; i < n_threads_ && !warmup.empty(); ++i) {
    const Warmup w = size_t(i) < warmup.size() ? warmup[size_t(i)] : Warmup{};
    Run& run = runs_[size_t(i)];
    run.warm_data.store(static_cast<const char*>(w.data), std::memory_order_relaxed);
    run.warm_bytes.store(w.bytes, std::memory_order_relaxed);
    run.warm_seq.fetch_add(1, std::memory_order_release);
  }
  error_ = nullptr;
  failed_.store(false, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  // Only callers (serialised by job_mutex_) write job_gen_.
  const uint64_t gen = (job_gen_.load(std::memory_order_relaxed) + 1) & kGenMask;
  for (int i = 0; i < n_threads_; ++i) {
    const auto begin = uint64_t(first_chunk(n_chunks, i, n_threads_));
    const auto end = uint64_t(first_chunk(n_chunks, i + 1, n_threads_));
    runs_[size_t(i)].word.store((gen << 40) | (begin << 20) | end, std::memory_order_release);
  }
  job_gen_.store(gen, std::memory_order_release);
  wake_.fetch_add(1);  // seq_cst: ordered before the sleeper check below
  if (sleepers_.load() > 0) wake_.notify_all();
  work(gen, 0);
  for (int spins = 0; done_.load(std::memory_order_acquire) < n_chunks;) {
    if (warm_step(0)) continue;
    if (spins++ < 2048)
      EP_CPU_RELAX();
    else
      std::this_thread::yield();  // a worker holding a chunk was descheduled
  }
  fn_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

}  // namespace ep
