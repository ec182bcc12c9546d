// A persistent pool of worker threads for data-parallel loops, cheap enough to call a few hundred
// times per decoded token.
//
// A mutex and condition variable per call would cost tens of microseconds; here workers spin
// briefly on an atomic counter between jobs (sleeping on a futex after ~0.3 ms idle), so
// back-to-back calls start in about a microsecond (a worker that is prefetching a warm-up range
// looks for a new job after every 1 KiB). Each pool owns its threads: there is no process-wide
// team.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
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

  // Memory one participant pulls into its caches once it has no chunk of a job left to run:
  // what it will read first in the next job (a memory-bound decode reads the next weight matrix
  // there instead of idling at the end of this one). Only a hint: the range may be stale,
  // inaccessible or unmapped (prefetches never fault).
  struct Warmup {
    const void* data = nullptr;
    int64_t bytes = 0;
  };

  // Calls fn(begin, end) over [0, n) in chunks of `grain` items, spread over all threads (the
  // caller included), and returns when every chunk is done. The first exception thrown by fn is
  // rethrown here. Concurrent callers are served one after the other. warmup[i] is what
  // participant i prefetches when it has no chunk left: the caller while it waits for the others
  // to finish, a worker while it waits for the next job (and, if that job has no warm-up of its
  // own, on after it: the small jobs between two products do not cancel it). Jobs run inline
  // (one thread, or n <= grain) ignore warmup.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn,
                    std::span<const Warmup> warmup = {});

  // The first item of participant i's run in parallel_for(n, grain, ...): where it starts (for
  // a participant with an empty run, where the next one starts; n for i = size()).
  int64_t run_begin(int64_t n, int64_t grain, int participant) const;

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
    // The participant's latest Warmup, numbered by warm_seq (atomics: a worker may read them
    // while the next caller writes them; a mixed set only warms the wrong lines).
    std::atomic<const char*> warm_data{nullptr};
    std::atomic<int64_t> warm_bytes{0};
    std::atomic<uint64_t> warm_seq{0};
    // Which warm-up the participant is on and how far it got: touched by that participant only
    // (participant 0 by callers, which job_mutex_ serialises).
    uint64_t warm_seen = 0;
    int64_t warmed = 0;
  };

  void work(uint64_t gen, int self);
  bool run_chunk_from(Run& run, uint64_t gen, bool front);
  void worker_loop(int self);
  // Prefetches the next few KiB of participant self's warm-up range; false if none is left.
  bool warm_step(int self);

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
