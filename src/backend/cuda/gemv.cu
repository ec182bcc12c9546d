// Batch-1 matrix-vector product for decode. It is bound by reading the weights once, so each warp
// streams one row with 16-byte loads, four in flight per lane before the first use.
#include "backend/cuda/bf16_util.cuh"
#include "backend/cuda/check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

namespace ep::cuda {
namespace {

constexpr int kWarps = 8;

__device__ __forceinline__ float dot8(const uint4& w, const uint4& x) {
  float a[8], b[8];
  unpack8(w, a);
  unpack8(x, b);
  float s = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) s = fmaf(a[i], b[i], s);
  return s;
}

template <GemvOut kOut>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const uint16_t* w, const uint16_t* x, int rows, int cols, void* y) {
  pdl_begin();
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + size_t(row) * cols);
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  const int nvec = cols / 8;
  float acc = 0;
  int i = lane;
  for (; i + 96 < nvec; i += 128) {
    // Weights are read once: stream them past the L1 (ld.global.cs).
    const uint4 w0 = __ldcs(wr + i), w1 = __ldcs(wr + i + 32), w2 = __ldcs(wr + i + 64),
                w3 = __ldcs(wr + i + 96);
    const uint4 x0 = __ldg(xv + i), x1 = __ldg(xv + i + 32), x2 = __ldg(xv + i + 64),
                x3 = __ldg(xv + i + 96);
    acc += dot8(w0, x0) + dot8(w1, x1) + dot8(w2, x2) + dot8(w3, x3);
  }
  for (; i < nvec; i += 32) acc += dot8(__ldcs(wr + i), __ldg(xv + i));
  acc = warp_sum(acc);
  if (lane != 0) return;
  if constexpr (kOut == GemvOut::F32) {
    static_cast<float*>(y)[row] = acc;
  } else if constexpr (kOut == GemvOut::F32Add) {
    static_cast<float*>(y)[row] += acc;
  } else {
    static_cast<uint16_t*>(y)[row] = float_to_bf16_bits(acc);
  }
}

}  // namespace

void gemv(const bf16_t* w, const bf16_t* x, int rows, int cols, void* y, GemvOut out,
          cudaStream_t s) {
  if (cols % 8 != 0)
    fail_message("gemv: " + std::to_string(cols) + " columns is not a multiple of 8");
  const int blocks = (rows + kWarps - 1) / kWarps;
  switch (out) {
    case GemvOut::F32:
      launch("gemv", gemv_kernel<GemvOut::F32>, blocks, kWarps * 32, 0, s, w, x, rows, cols, y);
      break;
    case GemvOut::F32Add:
      launch("gemv", gemv_kernel<GemvOut::F32Add>, blocks, kWarps * 32, 0, s, w, x, rows, cols, y);
      break;
    case GemvOut::BF16:
      launch("gemv", gemv_kernel<GemvOut::BF16>, blocks, kWarps * 32, 0, s, w, x, rows, cols, y);
      break;
  }
}

}  // namespace ep::cuda
