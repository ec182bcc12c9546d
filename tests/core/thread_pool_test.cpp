// The thread pool of the data-parallel loops: every index exactly once, errors propagate and
// leave the pool usable, many back-to-back calls (as in a decode step) complete, and pools used
// at the same time from different threads stay independent.
#include "core/thread_pool.h"
#include "core/error.h"

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace ep {
namespace {

void expect_each_index_once(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1) << pool.size() << " " << n << " " << grain;
}

TEST(ThreadPool, EveryIndexOnceErrorsPropagateBackToBackCalls) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 1000, 100003}) {
      for (int64_t grain : {1, 3, 64}) expect_each_index_once(pool, n, grain);
    }
    EXPECT_THROW(pool.parallel_for(100, 1,
                                   [](int64_t b, int64_t e) {
                                     if (b <= 42 && 42 < e) fail("boom");
                                   }),
                 Error);
    expect_each_index_once(pool, 1000, 3);  // still usable after a failed job
    std::atomic<int64_t> total{0};
    for (int rep = 0; rep < 3000; ++rep) {
      pool.parallel_for(16, 1, [&](int64_t b, int64_t e) { total += e - b; });
    }
    EXPECT_EQ(total.load(), 3000 * 16);
  }
}

// Each participant streams its own contiguous run of chunks front to back (one ascending address
// range per thread, which the prefetchers follow): the caller's chunks within its run [0, 32)
// are 0, 1, 2, ... without gaps (others only take from the back of it).
TEST(ThreadPool, CallerTakesItsOwnRunInAscendingOrder) {
  ThreadPool pool(2);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<int64_t> mine;
    const auto caller = std::this_thread::get_id();
    pool.parallel_for(64, 1, [&](int64_t b, int64_t) {
      if (std::this_thread::get_id() == caller && b < 32) mine.push_back(b);
    });
    for (size_t i = 0; i < mine.size(); ++i) ASSERT_EQ(mine[i], int64_t(i)) << rep;
  }
}

// run_begin says where each participant's run starts: the first chunk the worker of a two-thread
// pool takes is the front of its run (the caller may take the run's back, never its front
// first), also when the job has more chunks than a run word counts and the grain is coarsened.
TEST(ThreadPool, RunBeginIsTheFrontOfEachRun) {
  ThreadPool pool(2);
  EXPECT_EQ(pool.run_begin(1000, 7, 0), 0);
  for (const auto& [n, grain] : {std::pair<int64_t, int64_t>{1000, 7}, {64, 1}, {3000003, 1}}) {
    const auto caller = std::this_thread::get_id();
    for (int rep = 0; rep < (n > 100000 ? 3 : 50); ++rep) {
      std::atomic<int64_t> first_of_worker{-1};
      pool.parallel_for(n, grain, [&](int64_t b, int64_t) {
        int64_t none = -1;
        if (std::this_thread::get_id() != caller) first_of_worker.compare_exchange_strong(none, b);
      });
      const int64_t first = first_of_worker.load();
      if (first >= 0) {
        ASSERT_EQ(first, pool.run_begin(n, grain, 1)) << n << " " << grain;
      }
    }
  }
  // At most 2^20 - 1 chunks: grain 3, 1000001 chunks, the second run from chunk 500000.
  EXPECT_EQ(pool.run_begin(3000003, 1, 1), 1500000);
  EXPECT_EQ(pool.run_begin(3000003, 1, 2), 3000003);
  EXPECT_EQ(ThreadPool(1).run_begin(100, 1, 0), 0);
}

// Warm-up ranges are hints: ranges that are unmapped, inaccessible, null or the same as the last
// job's change no result, and the workers keep warming between jobs without disturbing the next.
TEST(ThreadPool, WarmupRangesAreOnlyHints) {
  const size_t bytes = size_t(4) << 20;
  std::vector<char> real(bytes, 1);  // before `gone`, so that it cannot land there
  void* gone = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(gone, MAP_FAILED);
  ASSERT_EQ(munmap(gone, bytes), 0);
  void* locked = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(locked, MAP_FAILED);
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    const ThreadPool::Warmup warm[] = {{gone, int64_t(bytes)},
                                       {real.data(), int64_t(bytes)},
                                       {locked, int64_t(bytes)},
                                       {nullptr, int64_t(bytes)},
                                       {real.data(), int64_t(bytes)}};
    for (int rep = 0; rep < 200; ++rep) {
      std::vector<std::atomic<int>> hits(1000);
      pool.parallel_for(
          1000, 7,
          [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
          },
          std::span(warm).subspan(size_t(rep % 4)));
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
      if (rep % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      expect_each_index_once(pool, 257, 4);  // a job without a warm-up in between
    }
  }
  munmap(locked, bytes);
}

// A participant held up in a chunk (a descheduled worker) does not hold up the job: the others
// take the rest of its run from the back.
TEST(ThreadPool, OthersTakeOverTheRunOfASlowParticipant) {
  ThreadPool pool(2);
  const auto caller = std::this_thread::get_id();
  std::atomic<int> by_caller{0};
  pool.parallel_for(64, 1, [&](int64_t b, int64_t) {
    if (b == 32) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (b >= 32 && std::this_thread::get_id() == caller) by_caller++;
  });
  EXPECT_GE(by_caller.load(), 31);  // all of [33, 64) at least, whoever ran chunk 32
}

// Two services in one process (a cloud and an edge) each own a pool and call it at the same time.
TEST(ThreadPool, PoolsUsedConcurrentlyStayIndependent) {
  ThreadPool a(2), b(2);
  std::atomic<int64_t> sum_a{0}, sum_b{0};
  auto drive = [](ThreadPool& pool, std::atomic<int64_t>& sum) {
    for (int rep = 0; rep < 500; ++rep) {
      pool.parallel_for(64, 1, [&](int64_t s, int64_t e) { sum += e - s; });
    }
  };
  std::thread ta([&] { drive(a, sum_a); }), tb([&] { drive(b, sum_b); });
  ta.join();
  tb.join();
  EXPECT_EQ(sum_a.load(), 500 * 64);
  EXPECT_EQ(sum_b.load(), 500 * 64);
}

// Two threads sharing one pool are served one job at a time, each job complete.
TEST(ThreadPool, ConcurrentCallersOfOnePoolAreSerialised) {
  ThreadPool pool(2);
  auto drive = [&] {
    for (int rep = 0; rep < 300; ++rep) expect_each_index_once(pool, 257, 4);
  };
  std::thread t1(drive), t2(drive);
  t1.join();
  t2.join();
}

}  // namespace
}  // namespace ep
