#include "kernels/cpu/matmul.h"

#include "core/quant.h"
#include "kernels/cpu/matmul_kernels.h"

#include <algorithm>
#include <string>
#include <vector>

namespace ep::kernels {

float dot_f32(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0];
}

namespace detail {
namespace {

// Portable kernels: expand each weight row to f32, then plain dot products.
constexpr int64_t kScalarPanel = 16;

void scalar_matvec(const MatrixView& w, const float* x, float* y, int64_t r0, int64_t r1) {
  if (w.type == DType::F32) {
    for (int64_t r = r0; r < r1; ++r)
      y[r] = dot_f32(static_cast<const float*>(w.row(r)), x, w.cols);
    return;
  }
  thread_local std::vector<float> row;
  row.resize(size_t(w.cols));
  for (int64_t r = r0; r < r1; ++r) {
    dequantize_row(w.type, w.row(r), row.data(), w.cols);
    y[r] = dot_f32(row.data(), x, w.cols);
  }
}

void scalar_gemm(const MatrixView& w, const float* x, int64_t n_tok, float* y, int64_t p0,
                 int64_t p1, float*) {
  thread_local std::vector<float> rows;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t r0 = p * kScalarPanel, r1 = std::min(w.rows, r0 + kScalarPanel);
    rows.resize(size_t((r1 - r0) * w.cols));
    for (int64_t r = r0; r < r1; ++r)
      dequantize_row(w.type, w.row(r), &rows[size_t((r - r0) * w.cols)], w.cols);
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t r = r0; r < r1; ++r) {
        y[t * w.rows + r] = dot_f32(&rows[size_t((r - r0) * w.cols)], x + t * w.cols, w.cols);
      }
    }
  }
}

}  // namespace

const MatmulKernels& matmul_kernels_scalar() {
  static const MatmulKernels k{&scalar_matvec, &scalar_gemm, kScalarPanel, 0, nullptr, 0};
  return k;
}

}  // namespace detail

namespace {

const detail::MatmulKernels& kernels_for(Isa isa) {
  switch (clamp_isa(isa)) {
    case Isa::Avx512:
      return detail::matmul_kernels_avx512();
    case Isa::Avx2:
      return detail::matmul_kernels_avx2();
    case Isa::Scalar:
      break;
  }
  return detail::matmul_kernels_scalar();
}

// Below this many activation rows the weights are streamed once per row (memory-bound decode).
constexpr int64_t kGemmMinRows = 3;

bool vnni_available(Isa isa) {
  return clamp_isa(isa) == Isa::Avx512 && cpu_features().avx512vnni;
}

// The 8-bit kernels of the fast precision (Q8_0/Q4_0 on every SIMD level): VNNI where the CPU
// has it, else AVX2.
const detail::QuantizedKernels& quantized_kernels(Isa isa) {
  return vnni_available(isa) ? detail::quantized_kernels_vnni() : detail::quantized_kernels_avx2();
}

const detail::QuantizedGemm& quantized_gemm(Isa isa, DType w) {
  return vnni_available(isa) ? detail::quantized_gemm_vnni() : detail::quantized_gemm_avx2(w);
}

bool bf16_available(Isa isa) {
  return clamp_isa(isa) == Isa::Avx512 && cpu_features().avx512bf16;
}

// The form in which a fast decode step hands its activations to the matrix-vector kernel of a
// weight type: f32 as they are, 8 bits per block (Q8_0/Q4_0 with AVX2 or AVX-512 VNNI; Q4_K,
// Q5_K and Q6_K with AVX2), or F16 (F16 weights with AVX-512).
enum class DecodePath { F32, Int8, Half };

DecodePath decode_path(DType t, Isa isa) {
  const bool int8 = t == DType::Q8_0 || t == DType::Q4_0 || detail::has_int8_k_kernel(t);
  if (int8 && clamp_isa(isa) != Isa::Scalar) return DecodePath::Int8;
  if (t == DType::F16 && clamp_isa(isa) == Isa::Avx512) return DecodePath::Half;
  return DecodePath::F32;
}

// Whether w runs in the same fast decode pass as `first` (matmul_multi's matrices share one
// while they share the first one's width and decode path).
bool shares_pass(const MatrixView& w, const MatrixView& first, Isa isa) {
  return w.cols == first.cols && decode_path(w.type, isa) == decode_path(first.type, isa);
}

// How far ahead of its start in the next product a thread prefetches while it waits: about the
// streaming time of the pool's wait at the end of a product and of the small steps between two
// products (norms, attention at short contexts), and half of a Zen 4/5 core's 1 MiB L2.
constexpr int64_t kWarmupBytes = int64_t(512) << 10;

}  // namespace

int64_t detail::decode_grain(int64_t total, const ThreadPool& pool) {
  return std::max<int64_t>(8, total / (int64_t(pool.size()) * 16));
}

void detail::decode_warmups(NextWeights next, const ThreadPool& pool, Isa isa,
                            std::vector<ThreadPool::Warmup>& warm) {
  warm.clear();
  // Only the matrices of the next pass: a matrix that does not share it starts a later one.
  size_t in_pass = 0;
  while (in_pass < next.size() && shares_pass(*next[in_pass], *next[0], isa)) ++in_pass;
  next = next.first(in_pass);
  int64_t total = 0;
  for (const MatrixView* w : next) total += w->rows;
  if (total == 0) return;
  const int64_t grain = detail::decode_grain(total, pool);
  for (int i = 0; i < pool.size(); ++i) {
    // Rows [row, end) of the pass are participant i's run; warm its start within one matrix.
    int64_t row = pool.run_begin(total, grain, i), end = pool.run_begin(total, grain, i + 1);
    ThreadPool::Warmup w;
    for (const MatrixView* m : next) {
      if (row < m->rows) {
        w.data = m->row(row);
        w.bytes = std::min(kWarmupBytes, (std::min(m->rows, end) - row) * m->row_bytes());
        break;
      }
      row -= m->rows;
      end -= m->rows;
    }
    warm.push_back(w);
  }
}

namespace {

// Fast decode (n_rows < kGemmMinRows) of products that share x and a decode path: the
// activations are converted once, and the rows of all matrices run as one range over the pool
// (a chunk may cover the end of one matrix and the start of the next), each row by the same
// kernel as a single product would use, decode_grain rows per chunk; threads that finish early
// warm up for `next`.
void decode_products(std::span<const MatmulOut> outs, const float* x, int64_t n_rows,
                     ThreadPool& pool, Isa isa, NextWeights next) {
  const DecodePath path = decode_path(outs[0].w->type, isa);
  const int64_t cols = outs[0].w->cols;
  int64_t total = 0;
  for (const MatmulOut& o : outs) total += o.w->rows;
  // Converted by the caller, read by every thread (a thread_local named inside the lambda would
  // be each worker's own, empty, copy).
  thread_local std::vector<detail::QuantizedActivations> int8_buffer;
  thread_local std::vector<detail::HalfActivations> half_buffer;
  std::vector<detail::QuantizedActivations>& xq = int8_buffer;
  std::vector<detail::HalfActivations>& xh = half_buffer;
  const detail::QuantizedKernels& qk = quantized_kernels(isa);
  if (path == DecodePath::Int8) {
    xq.resize(size_t(n_rows));
    for (int64_t t = 0; t < n_rows; ++t) qk.quantize(x + t * cols, cols, xq[size_t(t)]);
  } else if (path == DecodePath::Half) {
    xh.resize(size_t(n_rows));
    for (int64_t t = 0; t < n_rows; ++t)
      detail::half_kernels_avx512().convert(x + t * cols, cols, xh[size_t(t)]);
  }
  thread_local std::vector<ThreadPool::Warmup> warm_buffer;
  std::vector<ThreadPool::Warmup>& warm = warm_buffer;
  detail::decode_warmups(next, pool, isa, warm);
  const detail::MatmulKernels& k = kernels_for(isa);
  pool.parallel_for(
      total, detail::decode_grain(total, pool),
      [&](int64_t r0, int64_t r1) {
        int64_t base = 0;
        for (const MatmulOut& o : outs) {
          const int64_t a = std::max(r0, base) - base, b = std::min(r1, base + o.w->rows) - base;
          for (int64_t t = 0; a < b && t < n_rows; ++t) {
            float* y = o.y + t * o.w->rows;
            switch (path) {
              case DecodePath::Int8:
                qk.matvec(*o.w, xq[size_t(t)], y, a, b);
                break;
              case DecodePath::Half:
                detail::half_kernels_avx512().matvec(*o.w, xh[size_t(t)], y, a, b);
                break;
              case DecodePath::F32:
                k.matvec(*o.w, x + t * cols, y, a, b);
                break;
            }
          }
          base += o.w->rows;
        }
      },
      warm);
}

// Prefill through a GEMM on converted activations (8-bit, bf16 or f32 tiles): the activations
// converted over the pool (n_units of rows or token tiles, unit_grain per chunk; none to convert
// where n_units is 0), then the weight panels spread over it, each thread packing into its own
// scratch buffer.
template <class Convert, class Gemm>
void packed_prefill(int64_t n_units, int64_t unit_grain, int64_t n_panels, ThreadPool& pool,
                    const Convert& convert, const Gemm& gemm) {
  pool.parallel_for(n_units, unit_grain, convert);
  pool.parallel_for(n_panels, 1, [&](int64_t p0, int64_t p1) {
    thread_local std::vector<uint8_t> scratch;
    gemm(p0, p1, scratch);
  });
}

}  // namespace

void matmul(const MatrixView& w, const float* x, int64_t n_rows, float* y, ThreadPool& pool,
            Isa isa, Precision precision, NextWeights next) {
  const detail::MatmulKernels& k = kernels_for(isa);
  if (precision == Precision::Fast && n_rows < kGemmMinRows) {
    const MatmulOut out{&w, y};
    decode_products({&out, 1}, x, n_rows, pool, isa, next);
    return;
  }
  if (precision == Precision::Fast && (w.type == DType::Q8_0 || w.type == DType::Q4_0) &&
      clamp_isa(isa) != Isa::Scalar) {
    // Prefill: 8-bit activations against unpacked weight panels (integer dot products).
    const detail::QuantizedGemm& qg = quantized_gemm(isa, w.type);
    thread_local detail::QuantizedBatch xq_buffer;
    detail::QuantizedBatch& xq = xq_buffer;
    xq.n_tok = n_rows;
    xq.k = w.cols;
    xq.q.resize(size_t(n_rows * w.cols * qg.activation_bytes));
    xq.d.resize(size_t(n_rows * (w.cols / 32)));
    xq.sums.resize(xq.d.size());
    packed_prefill(
        n_rows, 16, (w.rows + qg.panel_rows - 1) / qg.panel_rows, pool,
        [&](int64_t t0, int64_t t1) { qg.quantize(x, w.cols, t0, t1, xq); },
        [&](int64_t p0, int64_t p1, std::vector<uint8_t>& scratch) {
          qg.gemm(w, xq, y, p0, p1, scratch);
        });
    return;
  }
  if (precision == Precision::Fast && n_rows >= kGemmMinRows &&
      (w.type == DType::F16 || w.type == DType::BF16 || detail::has_int8_k_kernel(w.type)) &&
      bf16_available(isa)) {
    // Prefill: weights (Q4_K, Q5_K, Q6_K expanded to f32 first) and activations rounded to bf16,
    // two products per f32 lane.
    const detail::Bf16Gemm& bg = detail::bf16_gemm_avx512();
    thread_local detail::Bf16Batch xb_buffer;
    detail::Bf16Batch& xb = xb_buffer;
    xb.n_tok = n_rows;
    xb.k2 = (w.cols + 1) & ~int64_t(1);
    xb.n_pad = (n_rows + bg.tile_tokens - 1) / bg.tile_tokens * bg.tile_tokens;
    xb.pairs.resize(size_t(xb.n_pad * xb.k2 / 2));
    packed_prefill(
        xb.n_pad / bg.tile_tokens, 1, (w.rows + bg.panel_rows - 1) / bg.panel_rows, pool,
        [&](int64_t t0, int64_t t1) { bg.convert(x, w.cols, t0, t1, xb); },
        [&](int64_t p0, int64_t p1, std::vector<uint8_t>& scratch) {
          bg.gemm(w, xb, y, p0, p1, scratch);
        });
    return;
  }
  // Prefill on f32 activations: laid out for the kernel once where it has a layout of its own
  // (pack; the scalar kernel reads x as it is).
  const int64_t n_tiles = k.pack ? (n_rows + k.pack_tokens - 1) / k.pack_tokens : 0;
  thread_local AlignedVector<float> packed_buffer;
  AlignedVector<float>& packed = packed_buffer;
  packed.resize(size_t(n_tiles * k.pack_tokens * w.cols));
  const float* xs = k.pack ? packed.data() : x;
  packed_prefill(
      n_tiles, 4, (w.rows + k.panel_rows - 1) / k.panel_rows, pool,
      [&](int64_t t0, int64_t t1) { k.pack(x, n_rows, w.cols, t0, t1, packed.data()); },
      [&](int64_t p0, int64_t p1, std::vector<uint8_t>& scratch) {
        scratch.resize(size_t(k.scratch_floats) * sizeof(float));
        k.gemm(w, xs, n_rows, y, p0, p1, reinterpret_cast<float*>(scratch.data()));
      });
}

void matmul(const MatrixView& w, const float* x, int64_t n_rows, float* y, ThreadPool& pool,
            Precision precision, NextWeights next) {
  matmul(w, x, n_rows, y, pool, active_isa(), precision, next);
}

void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_rows, ThreadPool& pool,
                  Precision precision, NextWeights next) {
  const Isa isa = active_isa();
  bool one_pass = precision == Precision::Fast && n_rows < kGemmMinRows && !outs.empty();
  for (const MatmulOut& o : outs) one_pass = one_pass && shares_pass(*o.w, *outs[0].w, isa);
  if (!one_pass) {
    for (size_t i = 0; i < outs.size(); ++i) {
      const MatrixView* const following[] = {i + 1 < outs.size() ? outs[i + 1].w : nullptr};
      matmul(*outs[i].w, x, n_rows, outs[i].y, pool, precision,
             i + 1 < outs.size() ? NextWeights(following) : next);
    }
    return;
  }
  decode_products(outs, x, n_rows, pool, isa, next);
}

}  // namespace ep::kernels
