// A benchmark run: the requests sent at their scheduled times (arrivals.h), at most
// `max_concurrency` in flight (a request due while all slots are busy waits for one, as in vLLM),
// each streamed and timed (stream_request.h), spread over one or more servers. An uncounted
// warm-up goes first.
#pragma once

#include "loadgen/bench_metrics.h"
#include "loadgen/stream_request.h"

#include <functional>
#include <vector>

namespace ep::loadgen {

struct RunPlan {
  std::vector<nlohmann::json> bodies;  // one per request, in sending order
  std::vector<size_t> prompt_lens;     // the same length
  std::vector<double> send_times_s;    // the same length, non-decreasing
  size_t max_concurrency = 0;          // 0: no limit
  size_t warmup = 0;                   // requests sent first (bodies reused in order), not counted
  std::function<void()> before_run;    // called after the warm-up, before the measured requests
};

struct RunResult {
  std::vector<RequestRecord> records;  // in sending order
  double duration_s = 0;               // from the first scheduled send to the last answer
};

// Request i goes to targets[i % targets.size()] (several edges, or one server). `progress(done,
// total)` is called from worker threads as requests finish (under a lock).
RunResult run_benchmark(const std::vector<Target>& targets, const RunPlan& plan,
                        const std::function<void(size_t, size_t)>& progress);

}  // namespace ep::loadgen
