// A persistent, low-overhead thread team for the kernels' data-parallel loops.
//
// ThreadPool (src/core) wakes its workers through a mutex and condition variable, which costs
// tens of microseconds per call; a decode step makes a few hundred such calls. The team here has
// the same semantics but its workers spin briefly on an atomic generation counter between jobs
// (sleeping on a futex after ~0.2 ms idle), so back-to-back calls start in well under a
// microsecond. One team per thread count is created on first use and lives for the process.
#pragma once

#include "core/thread_pool.h"

#include <cstdint>
#include <functional>

namespace ep::kernels {

// Calls fn(begin, end) over [0, n) in chunks of `grain` items on pool.size() threads (the caller
// included) and returns when all are done; the first exception thrown by fn is rethrown.
void parallel_for(ThreadPool& pool, int64_t n, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace ep::kernels
