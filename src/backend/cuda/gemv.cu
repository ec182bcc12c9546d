// Batch-1 matrix-vector product for decode. It is bound by reading the weights once, so each warp
// streams one row with 16-byte loads, four in flight per lane before the first use; the first
// four are issued before the wait on the predecessor kernel.
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

// A lane's first four weight vectors (zeros past the row's end). The weights are constant, so
// the kernel issues these loads before waiting on its predecessor (dependent launch): the first
// part of the weight stream overlaps the previous kernel's tail.
__device__ __forceinline__ void first_vectors(const uint4* wr, int nvec, int lane, uint4 (&p)[4]) {
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    // Weights are read once: stream them past the L1 (ld.global.cs).
    p[k] = lane + 32 * k < nvec ? __ldcs(wr + lane + 32 * k) : make_uint4(0, 0, 0, 0);
  }
}

// One lane's share of the dot product of a weight row with x (nvec 16-byte vectors), given its
// first four weight vectors.
__device__ __forceinline__ float row_dot(const uint4* wr, const uint4* xv, int nvec, int lane,
                                         const uint4 (&p)[4]) {
  float acc = 0;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    if (lane + 32 * k < nvec) acc += dot8(p[k], __ldg(xv + lane + 32 * k));
  }
  int i = lane + 128;
  for (; i + 96 < nvec; i += 128) {
    const uint4 w0 = __ldcs(wr + i), w1 = __ldcs(wr + i + 32), w2 = __ldcs(wr + i + 64),
                w3 = __ldcs(wr + i + 96);
    const uint4 x0 = __ldg(xv + i), x1 = __ldg(xv + i + 32), x2 = __ldg(xv + i + 64),
                x3 = __ldg(xv + i + 96);
    acc += dot8(w0, x0) + dot8(w1, x1) + dot8(w2, x2) + dot8(w3, x3);
  }
  for (; i < nvec; i += 32) acc += dot8(__ldcs(wr + i), __ldg(xv + i));
  return acc;
}

template <GemvOut kOut>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(const uint16_t* w, const uint16_t* x, int rows, int cols, void* y) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  if (row >= rows) return;  // touches no memory; the block's other warps signal dependents
  const int nvec = cols / 8;
  const uint4* wr = reinterpret_cast<const uint4*>(w + size_t(row) * cols);
  // SwiGLU: the gate row's partner is the up row `rows` further down.
  const uint4* ur = reinterpret_cast<const uint4*>(w + size_t(rows + row) * cols);
  uint4 first[4], up_first[4];
  first_vectors(wr, nvec, lane, first);
  if constexpr (kOut == GemvOut::SwiGLU) first_vectors(ur, nvec, lane, up_first);
  pdl_begin();  // x (and y) come from the predecessor
  const uint4* xv = reinterpret_cast<const uint4*>(x);
  float acc = warp_sum(row_dot(wr, xv, nvec, lane, first));
  if constexpr (kOut == GemvOut::SwiGLU) {
    const float up = warp_sum(row_dot(ur, xv, nvec, lane, up_first));
    // Gate and up rounded to bf16 first, as the batched path stores its gate|up product: batch-1
    // and batched decode then compute the same SwiGLU (greedy tokens stay comparable).
    const float g = bf16_bits_to_float(float_to_bf16_bits(acc));
    const float u = bf16_bits_to_float(float_to_bf16_bits(up));
    acc = g / (1.0f + expf(-g)) * u;
  }
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
    case GemvOut::SwiGLU:
      launch("gemv", gemv_kernel<GemvOut::SwiGLU>, blocks, kWarps * 32, 0, s, w, x, rows, cols, y);
      break;
  }
}

}  // namespace ep::cuda
