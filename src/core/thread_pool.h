// A persistent pool of worker threads for data-parallel loops, cheap enough to call a few hundred
// times per decoded token.
//
// A mutex and condition variable per call would cost tens of microseconds; here workers spin
// briefly on an atomic counter between jobs (sleeping on a futex after ~0.3 ms idle), so
// back-to-back calls start in well under a microsecond. Each pool owns its threads: there is no
// process-wide team.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ep {

class ThreadPool {
 public:
  // n_threads counts the calling thread: a pool of 1 runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) over [0, n) in chunks of `grain` items, spread over all threads (the
  // caller included), and returns when every chunk is done. The first exception thrown by fn is
  // rethrown here. Concurrent callers are served one after the other.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  static int default_threads();  // hardware concurrency, at least 1

 private:
  // Each participant (the caller is 0, worker i is i) owns a contiguous run of the chunks and
  // takes them from the front, so each thread streams one ascending address range per call (the
  // hardware prefetchers follow it, and software prefetch runs ahead into the thread's own next
  // chunk); a participant that runs out takes chunks from the back of the others' runs. The run
  // is one word, generation (24 bits) | next chunk (20) | end (20), claimed by compare-and-swap,
  // so a late worker can never take a chunk of another job.
  struct alignas(64) Run {
    std::atomic<uint64_t> word{0};
  };

  void work(uint64_t gen, int self);
  bool run_chunk_from(Run& run, uint64_t gen, bool front);
  void worker_loop(int self);

  int n_threads_;
  std::vector<Run> runs_;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_, error_mutex_;
  std::atomic<uint64_t> job_gen_{0};  // generation of the latest job
  std::atomic<uint32_t> wake_{0};     // bumped once per job; idle workers sleep on it
  std::atomic<int> sleepers_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_{false};
  // The job in flight (stable while any of its chunks is claimed and not yet counted in done_).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
  std::exception_ptr error_;
};

}  // namespace ep
