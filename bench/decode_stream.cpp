// The decode (matrix-vector) kernels of the fast precision:
//   cache: one thread, a 64-row matrix that stays in L2, the 8-bit kernels (VNNI, AVX2) called
//          directly (their compute rate, in G blocks of 32 weights per second), and the fast F16
//          kernel (GB/s of weights it could take in if memory kept up; --cache-only stops here);
//   stream: two threads through kernels::matmul over a ~1 GiB matrix in anonymous huge pages (how
//          fast the kernel streams from memory, without the rest of a decode step), alternating the
//          types 7 times (EP_ISA=avx2: the AVX2 kernels);
//   layers: two threads through kernels::matmul over the TinyLlama-1.1B decode matrices in engine
//          order (q|k|v, o, gate|up, down) x 22 layers, contiguous in huge pages, alternated 12
//          times with one matrix of the same bytes (what the per-call cost of the thread pool is);
//   half:   the F16 sequence of "layers" with f32 activations (the exact-product kernel) against
//           activations rounded to F16 (the fast decode kernel), alternated 15 times;
//   rows:   two threads, the fast F16 kernel over ~1 GiB matrices with rows of 2048 to 8192
//           columns (the same bytes; only the length of the activation vector differs), rounds
//           alternated 7 times;
//   warm:   that F16 sequence through kernels::matmul with and without each product's
//           successor named (threads that finish early prefetch their start in it), back to back
//           and with 10 us of other work after each product, alternated 15 times;
//   file:   (only with a model file argument, at least 2 GB, e.g. the F16 TinyLlama GGUF) the
//           F16 sequence with the fast kernel over the bytes of that file, once in an
//           edgeprompt mapping of the page cache and once copied to anonymous huge pages,
//           alternated 15 times (what the page cache's folio sizes cost; bench/page_folios.cpp
//           tells them).
//   cmake -S . -B build -G Ninja -DEP_BENCH=ON && cmake --build build --target decode_stream
//   build/bench/decode_stream [MODEL | --cache-only]
// Read the stream rates against bench/read_bandwidth.cpp run right after.
#include "core/aligned_vector.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/quant.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_kernels.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace ep;

namespace {

constexpr int64_t kCols = 2048;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (float& e : v) e = nd(rng);
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// At least `bytes` of 2 MiB-aligned memory with huge pages requested, as the model mappings get
// (free with std::free; exits if there is not enough memory).
uint8_t* huge_buffer(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  bytes = (bytes + kHuge - 1) & ~(kHuge - 1);
  auto* d = static_cast<uint8_t*>(std::aligned_alloc(kHuge, bytes));
  if (!d) {
    std::fprintf(stderr, "decode_stream: cannot allocate %zu bytes\n", bytes);
    std::exit(1);
  }
  madvise(d, bytes, MADV_HUGEPAGE);
  return d;
}

// Two passes (each returning GB/s) run alternately `reps` times: their medians (the upper one
// for an even count), and how often each was faster.
struct Alternation {
  double first, second;
  int first_faster, second_faster;
};

template <class First, class Second>
Alternation alternate(int reps, First&& first, Second&& second) {
  std::vector<double> a, b;
  int first_faster = 0, second_faster = 0;
  for (int rep = 0; rep < reps; ++rep) {
    a.push_back(first());
    b.push_back(second());
    first_faster += a.back() > b.back();
    second_faster += b.back() > a.back();
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return {a[size_t(reps / 2)], b[size_t(reps / 2)], first_faster, second_faster};
}

// Whether the CPU has AVX-512 (the F16 decode kernel); if not, says that `mode` is skipped.
bool avx512_or_skip(const char* mode) {
  if (kernels::clamp_isa(kernels::Isa::Avx512) == kernels::Isa::Avx512) return true;
  std::printf("%s: no AVX-512 on this CPU, skipped\n", mode);
  return false;
}

// One core, weights in L2: the 8-bit kernels' compute rate (VNNI and AVX2, those the CPU has).
// The best of three timings of `iters` calls: billions of `units_per_call` per second.
template <class Call>
double best_rate(int iters, double units_per_call, Call&& call) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) call();
    best = std::max(best, double(iters) * units_per_call / seconds_since(t0) / 1e9);
  }
  return best;
}

void cache_rate() {
  struct Path {
    const char* name;
    const kernels::detail::QuantizedKernels* k;
  };
  std::vector<Path> paths;
  if (kernels::cpu_features().avx512vnni)
    paths.push_back({"vnni", &kernels::detail::quantized_kernels_vnni()});
  if (kernels::clamp_isa(kernels::Isa::Avx2) == kernels::Isa::Avx2)
    paths.push_back({"avx2", &kernels::detail::quantized_kernels_avx2()});
  if (paths.empty()) std::printf("cache: no AVX2 on this CPU, skipped\n");
  const std::vector<float> x = random_floats(kCols, 2);
  for (const Path& p : paths) {
    kernels::detail::QuantizedActivations a;
    p.k->quantize(x.data(), kCols, a);
    for (DType t : {DType::Q8_0, DType::Q4_0}) {
      const int64_t rows = 64, rb = dtype_row_bytes(t, kCols);
      const std::vector<float> src = random_floats(size_t(rows * kCols), 1);
      std::vector<uint8_t> w(size_t(rows * rb));
      for (int64_t r = 0; r < rows; ++r)
        quantize_row(t, &src[size_t(r * kCols)], &w[size_t(r * rb)], kCols);
      const MatrixView m{t, rows, kCols, w.data()};
      std::vector<float> y(static_cast<size_t>(rows));
      const double rate = best_rate(300000, double(rows * (kCols / 32)),
                                    [&] { p.k->matvec(m, a, y.data(), 0, rows); });
      std::printf("cache  %-5s %s 1 thread: %.2f G blocks/s\n", std::string(dtype_name(t)).c_str(),
                  p.name, rate);
    }
  }
  if (kernels::clamp_isa(kernels::Isa::Avx512) != kernels::Isa::Avx512) return;
  // The fast F16 kernel from L2 (half activations): the rate it could stream at if memory kept up.
  const kernels::detail::HalfKernels& hk = kernels::detail::half_kernels_avx512();
  kernels::detail::HalfActivations h;
  hk.convert(x.data(), kCols, h);
  const int64_t rows = 64;
  std::vector<uint8_t> w(size_t(rows * kCols * 2));
  const std::vector<float> src = random_floats(size_t(rows * kCols), 1);
  for (int64_t r = 0; r < rows; ++r)
    quantize_row(DType::F16, &src[size_t(r * kCols)], &w[size_t(r * kCols * 2)], kCols);
  const MatrixView m{DType::F16, rows, kCols, w.data()};
  std::vector<float> y(static_cast<size_t>(rows));
  const double rate =
      best_rate(100000, double(w.size()), [&] { hk.matvec(m, h, y.data(), 0, rows); });
  std::printf("cache  f16   half 1 thread: %.1f GB/s of weights\n", rate);
}

// Two threads, ~1 GiB per type in huge pages, through kernels::matmul (fast precision, one row).
void stream_rate() {
  ThreadPool pool(2);
  struct Matrix {
    DType type;
    int64_t rows;
    uint8_t* data;
  };
  std::vector<Matrix> ms;
  const std::vector<float> src = random_floats(size_t(64 * kCols), 1);
  for (DType t : {DType::Q8_0, DType::F16, DType::Q4_0}) {
    const int64_t rb = dtype_row_bytes(t, kCols), rows = (int64_t(1) << 30) / rb;
    uint8_t* d = huge_buffer(size_t(rows * rb));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t, &src[size_t(r % 64 * kCols)], d + r * rb, kCols);
    ms.push_back({t, rows, d});
  }
  const std::vector<float> x = random_floats(kCols, 2);
  std::vector<std::vector<double>> gbps(ms.size());
  for (int rep = 0; rep < 7; ++rep) {
    for (size_t i = 0; i < ms.size(); ++i) {
      std::vector<float> y(size_t(ms[i].rows));
      const MatrixView m{ms[i].type, ms[i].rows, kCols, ms[i].data};
      const auto t0 = std::chrono::steady_clock::now();
      kernels::matmul(m, x.data(), 1, y.data(), pool, kernels::Precision::Fast);
      gbps[i].push_back(double(ms[i].rows * m.row_bytes()) / seconds_since(t0) / 1e9);
    }
  }
  for (size_t i = 0; i < ms.size(); ++i) {
    std::sort(gbps[i].begin(), gbps[i].end());
    std::printf("stream %-5s 2 threads: median %.1f GB/s, max %.1f\n",
                std::string(dtype_name(ms[i].type)).c_str(), gbps[i][3], gbps[i][6]);
    std::free(ms[i].data);
  }
}

// Two threads, the 88 decode matrix products of TinyLlama-1.1B (fused as the engine calls them)
// against one product over the same bytes.
void layer_rate() {
  ThreadPool pool(2);
  struct Shape {
    int64_t rows, cols;
  };
  std::vector<Shape> shapes;
  for (int l = 0; l < 22; ++l)
    shapes.insert(shapes.end(), {{2560, 2048}, {2048, 2048}, {11264, 2048}, {2048, 5632}});
  const std::vector<float> src = random_floats(size_t(64 * 5632), 1), x = random_floats(5632, 2);
  std::vector<float> y(size_t(1) << 20);
  for (DType t : {DType::Q8_0, DType::F16, DType::Q4_0}) {
    size_t total = 0;
    for (const Shape& sh : shapes) total += size_t(sh.rows * dtype_row_bytes(t, sh.cols));
    uint8_t* d = huge_buffer(total);
    std::vector<MatrixView> ms;
    size_t off = 0;
    for (const Shape& sh : shapes) {
      const int64_t rb = dtype_row_bytes(t, sh.cols);
      for (int64_t r = 0; r < sh.rows; ++r)
        quantize_row(t, &src[size_t(r % 64 * sh.cols)], d + off + r * rb, sh.cols);
      ms.push_back(MatrixView{t, sh.rows, sh.cols, d + off});
      off += size_t(sh.rows * rb);
    }
    const MatrixView one{t, int64_t(total) / dtype_row_bytes(t, 2048), 2048, d};
    const Alternation r = alternate(
        12,
        [&] {
          const auto t0 = std::chrono::steady_clock::now();
          for (const MatrixView& m : ms)
            kernels::matmul(m, x.data(), 1, y.data(), pool, kernels::Precision::Fast);
          return double(total) / seconds_since(t0) / 1e9;
        },
        [&] {
          const auto t0 = std::chrono::steady_clock::now();
          kernels::matmul(one, x.data(), 1, y.data(), pool, kernels::Precision::Fast);
          return double(total) / seconds_since(t0) / 1e9;
        });
    std::printf("layers %-5s 2 threads: %.0f MB in 88 calls median %.1f GB/s; one call %.1f\n",
                std::string(dtype_name(t)).c_str(), double(total) / 1e6, r.first, r.second);
    std::free(d);
  }
}

// The 88 TinyLlama F16 decode products in engine order, laid out back to back from `base`
// (`total` gets their bytes; a null base only counts them).
std::vector<MatrixView> f16_decode_sequence(const uint8_t* base, size_t& total) {
  std::vector<MatrixView> ms;
  total = 0;
  for (int l = 0; l < 22; ++l) {
    for (const auto& [rows, cols] :
         {std::pair<int64_t, int64_t>{2560, 2048}, {2048, 2048}, {11264, 2048}, {2048, 5632}}) {
      if (base) ms.push_back(MatrixView{DType::F16, rows, cols, base + total});
      total += size_t(rows * cols * 2);
    }
  }
  return ms;
}

// The F16 decode sequence in a fresh huge-page buffer `d` (the caller frees it) with random
// weights.
std::vector<MatrixView> random_f16_decode_sequence(uint8_t*& d, size_t& total) {
  f16_decode_sequence(nullptr, total);
  d = huge_buffer(total);
  std::vector<MatrixView> ms = f16_decode_sequence(d, total);
  const std::vector<float> src = random_floats(size_t(64 * 5632), 1);
  size_t off = 0;
  for (const MatrixView& m : ms) {
    for (int64_t r = 0; r < m.rows; ++r)
      quantize_row(DType::F16, &src[size_t(r % 64 * m.cols)], d + off + r * m.row_bytes(), m.cols);
    off += size_t(m.rows * m.row_bytes());
  }
  return ms;
}

// One pass of the fast F16 decode kernel over a sequence; returns GB/s.
double half_pass(ThreadPool& pool, const std::vector<MatrixView>& ms, size_t total, const float* x,
                 kernels::detail::HalfActivations& xh, float* y) {
  const auto& kernel = kernels::detail::half_kernels_avx512();
  const auto t0 = std::chrono::steady_clock::now();
  for (const MatrixView& m : ms) {
    kernel.convert(x, m.cols, xh);
    pool.parallel_for(m.rows, std::max<int64_t>(8, m.rows / 32),
                      [&](int64_t a, int64_t b) { kernel.matvec(m, xh, y, a, b); });
  }
  return double(total) / seconds_since(t0) / 1e9;
}

// Two threads, the TinyLlama F16 decode sequence as in layer_rate, each product through the pool
// with the f32-activation kernel and with the half-activation kernel, alternated.
void half_activation_rate() {
  if (!avx512_or_skip("half")) return;
  ThreadPool pool(2);
  size_t total = 0;
  uint8_t* d = nullptr;
  const std::vector<MatrixView> ms = random_f16_decode_sequence(d, total);
  const std::vector<float> xv = random_floats(5632, 2);
  AlignedVector<float> x(xv.begin(), xv.end());
  std::vector<float> y(size_t(1) << 20);
  const auto& f32_kernel = kernels::detail::matmul_kernels_avx512();
  kernels::detail::HalfActivations xh;
  const Alternation r = alternate(
      15,
      [&] {
        const auto t0 = std::chrono::steady_clock::now();
        for (const MatrixView& m : ms) {
          pool.parallel_for(m.rows, std::max<int64_t>(8, m.rows / 32), [&](int64_t a, int64_t b) {
            f32_kernel.matvec(m, x.data(), y.data(), a, b);
          });
        }
        return double(total) / seconds_since(t0) / 1e9;
      },
      [&] { return half_pass(pool, ms, total, x.data(), xh, y.data()); });
  std::printf(
      "half   f16   2 threads: f32 activations median %.1f GB/s, half activations %.1f "
      "(faster in %d of 15 alternations)\n",
      r.first, r.second, r.second_faster);
  std::free(d);
}

// Two threads, the fast F16 decode kernel through kernels::matmul over ~1 GiB matrices whose rows
// are 2048, 4096, 5632 and 8192 columns long, rounds over the four alternated 7 times: the same
// bytes streamed in the same order, only the activation vector each row reads differs in length
// (4 to 16 KiB as f16).
void row_length_rate() {
  if (!avx512_or_skip("rows")) return;
  ThreadPool pool(2);
  const int64_t cols[] = {2048, 4096, 5632, 8192};
  const size_t bytes = size_t(1) << 30;
  uint8_t* d = huge_buffer(bytes);
  const std::vector<float> src = random_floats(size_t(64 * 8192), 1);
  for (size_t off = 0; off + 8192 * 2 <= bytes; off += 8192 * 2)
    quantize_row(DType::F16, &src[off / (8192 * 2) % 64 * 8192], d + off, 8192);
  const std::vector<float> x = random_floats(8192, 2);
  std::vector<float> y(bytes / (2048 * 2));
  std::vector<std::vector<double>> gbps(std::size(cols));
  for (int rep = 0; rep < 7; ++rep) {
    for (size_t i = 0; i < std::size(cols); ++i) {
      const MatrixView m{DType::F16, int64_t(bytes) / (cols[i] * 2), cols[i], d};
      const auto t0 = std::chrono::steady_clock::now();
      kernels::matmul(m, x.data(), 1, y.data(), pool, kernels::Precision::Fast);
      gbps[i].push_back(double(bytes) / seconds_since(t0) / 1e9);
    }
  }
  std::printf("rows   f16   2 threads, median GB/s by row length:");
  for (size_t i = 0; i < std::size(cols); ++i) {
    std::sort(gbps[i].begin(), gbps[i].end());
    std::printf(" %ld cols %.1f%s", long(cols[i]), gbps[i][3],
                i + 1 < std::size(cols) ? "," : "\n");
  }
  std::free(d);
}

// Two threads, the TinyLlama F16 decode sequence through kernels::matmul (fast precision) with and
// without naming each product's successor (kernels::NextWeights: threads with no rows left
// prefetch their start in it), alternated; once back to back, once with `gap_us` of other work
// on the calling thread after each product (a decode step's norms, RoPE and attention).
void warmup_rate(int gap_us) {
  if (!avx512_or_skip("warm")) return;
  ThreadPool pool(2);
  size_t total = 0;
  uint8_t* d = nullptr;
  const std::vector<MatrixView> ms = random_f16_decode_sequence(d, total);
  const std::vector<float> x = random_floats(5632, 2);
  std::vector<float> y(size_t(1) << 20);
  const auto pass = [&](bool hint) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < ms.size(); ++i) {
      // The last product names none: the pass that follows starts cold either way.
      const bool name = hint && i + 1 < ms.size();
      const MatrixView* const next[] = {&ms[name ? i + 1 : i]};
      kernels::matmul(ms[i], x.data(), 1, y.data(), pool, kernels::Precision::Fast,
                      kernels::NextWeights(next).first(name ? 1 : 0));
      const auto gap = std::chrono::steady_clock::now();
      while (seconds_since(gap) < gap_us * 1e-6) {
      }
    }
    return double(total) / seconds_since(t0) / 1e9;
  };
  const Alternation r = alternate(
      15, [&] { return pass(false); }, [&] { return pass(true); });
  std::printf(
      "warm   f16   2 threads, %2d us between products: no successor named %.1f GB/s, named %.1f "
      "(faster in %d of 15 alternations)\n",
      gap_us, r.first, r.second, r.second_faster);
  std::free(d);
}

// Two threads, the fast F16 kernel over the first bytes of a model file (its page cache, through
// an edgeprompt mapping) and over a copy of them in anonymous huge pages, alternated.
void file_rate(const char* path) {
  if (!avx512_or_skip("file")) return;
  const MappedFile file(path);
  size_t total = 0;
  f16_decode_sequence(nullptr, total);
  if (file.size() < total) {
    std::fprintf(stderr, "decode_stream: %s has %zu bytes, the sequence needs %zu\n", path,
                 file.size(), total);
    std::exit(1);
  }
  uint8_t* d = huge_buffer(total);
  std::memcpy(d, file.data(), total);  // the same bytes: no NaN or denormal difference
  ThreadPool pool(2);
  const std::vector<MatrixView> mapped = f16_decode_sequence(file.data(), total);
  const std::vector<MatrixView> anonymous = f16_decode_sequence(d, total);
  const std::vector<float> xv = random_floats(5632, 2);
  AlignedVector<float> x(xv.begin(), xv.end());
  std::vector<float> y(size_t(1) << 20);
  kernels::detail::HalfActivations xh;
  const Alternation r = alternate(
      15, [&] { return half_pass(pool, mapped, total, x.data(), xh, y.data()); },
      [&] { return half_pass(pool, anonymous, total, x.data(), xh, y.data()); });
  std::printf(
      "file   f16   2 threads: page-cache mapping median %.1f GB/s, anonymous huge pages "
      "%.1f (mapping faster in %d of 15 alternations)\n",
      r.first, r.second, r.first_faster);
  std::free(d);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2) {
    std::fprintf(stderr, "usage: decode_stream [MODEL | --cache-only]\n");
    return 2;
  }
  cache_rate();
  if (argc == 2 && std::string(argv[1]) == "--cache-only") return 0;
  stream_rate();
  layer_rate();
  half_activation_rate();
  row_length_rate();
  warmup_rate(0);
  warmup_rate(10);
  if (argc == 2) {
    try {
      file_rate(argv[1]);
    } catch (const Error& e) {
      std::fprintf(stderr, "decode_stream: %s\n", e.what());
      return 1;
    }
  }
  return 0;
}
