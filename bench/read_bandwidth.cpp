// The memory read bandwidth a decode step can hope for: T threads each stream-read their half of a
// 2 GiB buffer (2 MiB huge pages requested, as the model mappings get) with 512-bit loads and
// nothing else to do. Decode GB/s of a memory-bound engine is read against this number, measured in
// the same minutes (the machine's bandwidth varies with its neighbours).
//   cmake -S . -B build -G Ninja -DEP_BENCH=ON && cmake --build build --target read_bandwidth
//   build/bench/read_bandwidth [threads=2] [reps=7]
// Prints one JSON object: the median and max GB/s over the repetitions, and every sample.
#include "kernels/cpu/target_region.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <immintrin.h>

EP_TARGET_REGION_BEGIN("avx512f")

namespace {

// Sums n bytes (a multiple of 256) as floats: four independent chains, four lines per step.
float read_all(const char* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < n; i += 256) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 64));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 128));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 192));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 7;
  if (threads < 1 || reps < 1) {
    std::fprintf(stderr, "usage: read_bandwidth [threads >= 1] [reps >= 1]\n");
    return 2;
  }
  constexpr size_t kBytes = size_t(2) << 30, kHuge = size_t(2) << 20;
  char* buf = static_cast<char*>(std::aligned_alloc(kHuge, kBytes));
  if (!buf) {
    std::fprintf(stderr, "read_bandwidth: cannot allocate 2 GiB\n");
    return 1;
  }
  madvise(buf, kBytes, MADV_HUGEPAGE);
  std::memset(buf, 1, kBytes);  // fault every page in before timing
  const size_t share = kBytes / size_t(threads) / 256 * 256;
  std::vector<double> gbps;
  std::vector<float> sink(static_cast<size_t>(threads));
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> team;
    for (int t = 0; t < threads; ++t)
      team.emplace_back([&, t] { sink[size_t(t)] = read_all(buf + size_t(t) * share, share); });
    for (auto& th : team) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    gbps.push_back(double(share) * threads / s / 1e9);
  }
  std::vector<double> sorted = gbps;
  std::sort(sorted.begin(), sorted.end());
  std::printf(
      "{\"threads\": %d, \"read_GBps_median\": %.1f, \"read_GBps_max\": %.1f, \"samples\": [",
      threads, sorted[sorted.size() / 2], sorted.back());
  for (size_t i = 0; i < gbps.size(); ++i) std::printf("%s%.1f", i ? ", " : "", gbps[i]);
  std::printf("], \"checksum\": %g}\n", double(sink[0]));
  std::free(buf);
  return 0;
}

EP_TARGET_REGION_END
