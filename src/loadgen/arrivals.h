// When each request of a run is sent: gamma-distributed gaps between arrivals with mean
// 1 / rate and shape `burstiness` (1: a Poisson process; below 1 burstier, above 1 more regular),
// as vLLM's benchmark draws them. A fixed seed gives the same schedule on every run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ep::loadgen {

// Send times in seconds from the start, non-decreasing; all 0 when `rate` is infinite. The first
// request waits one gap too, as in vLLM. ep::Error for a rate or burstiness that is not positive.
std::vector<double> arrival_times(size_t n, double rate, double burstiness, uint64_t seed);

}  // namespace ep::loadgen
