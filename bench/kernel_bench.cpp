// Micro-benchmark of the matrix kernels on synthetic weights:
//   cmake -S . -B build -G Ninja -DEP_BENCH=ON && cmake --build build --target kernel_bench
//   build/bench/kernel_bench [threads]
// Times are CPU seconds of the process (divide by threads for wall time on an idle machine).
// Prints, per type and instruction-set level, decode matvec GB/s for a matrix that stays in
// cache (compute rate) and one far larger than cache (memory rate), and GEMM GFLOP/s.
#include "core/quant.h"
#include "core/thread_pool.h"
#include "kernels/cpu/matmul.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

using namespace ep;

// Process CPU time: on a shared machine wall time includes other people's work.
struct CpuClock {
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<CpuClock>;
  static time_point now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return time_point(duration(int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec));
  }
};

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  ThreadPool pool(threads);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::F16}) {
    for (int64_t rows : {int64_t(256), int64_t(32768)}) {
      const int64_t cols = 2048, rb = dtype_row_bytes(t, cols);
      std::vector<float> src(static_cast<size_t>(cols));
      std::vector<uint8_t> w(size_t(rows * rb));
      for (int64_t r = 0; r < rows; ++r) {
        if (r < 64)
          for (auto& v : src) v = nd(rng);
        quantize_row(t, src.data(), w.data() + r * rb, cols);
      }
      std::vector<float> x(size_t(cols * 512)), y(size_t(rows * 512));
      for (auto& v : x) v = nd(rng);
      const MatrixView m{t, rows, cols, w.data()};
      for (kernels::Isa isa : {kernels::Isa::Avx2, kernels::Isa::Avx512}) {
        const int reps = rows == 256 ? 2000 : 20;
        for (auto prec : {kernels::Precision::Exact, kernels::Precision::Fast}) {
          kernels::matmul(m, x.data(), 1, y.data(), pool, isa, prec);
          auto t0 = CpuClock::now();
          for (int i = 0; i < reps; ++i) kernels::matmul(m, x.data(), 1, y.data(), pool, isa, prec);
          double dt = std::chrono::duration<double>(CpuClock::now() - t0).count();
          std::printf(
              "%-5s %-6s %-5s matvec rows %6ld: %6.1f GB/s %6.2f Gblocks/s\n",
              std::string(dtype_name(t)).c_str(), std::string(kernels::cpu_isa_name(isa)).c_str(),
              prec == kernels::Precision::Fast ? "fast" : "exact", long(rows),
              double(rows * rb) * reps / dt / 1e9, double(rows * cols / 32) * reps / dt / 1e9);
        }
        if (rows == 256) continue;
        const int64_t nt = 512, gr = 2048;
        const MatrixView g{t, gr, cols, w.data()};
        kernels::matmul(g, x.data(), nt, y.data(), pool, isa);
        auto t0 = CpuClock::now();
        kernels::matmul(g, x.data(), nt, y.data(), pool, isa);
        double dt = std::chrono::duration<double>(CpuClock::now() - t0).count();
        std::printf(
            "%-5s %-6s gemm 512x2048x2048: %6.1f GFLOP/s\n", std::string(dtype_name(t)).c_str(),
            std::string(kernels::cpu_isa_name(isa)).c_str(), 2.0 * nt * gr * cols / dt / 1e9);
      }
    }
  }
}
