// Quantised weights on the device: dequantisation to bf16 (for the batched GEMM and the embedding
// lookup) and the fused dequantise-and-multiply GEMV of decode. Values are computed with ggml's
// formulas in core/quant_k.cpp and core/quant_legacy.cpp, operation for operation and with
// explicit round-to-nearest multiplies and adds (no contraction into FMAs), so that the device's
// dequantised values equal the host's bit for bit.
#include "backend/cuda/bf16_util.cuh"
#include "backend/cuda/check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

#include <cuda_fp16.h>

#include <algorithm>
#include <string>

namespace ep::cuda {
namespace {

__device__ __forceinline__ float f16_at(const uint8_t* p) {
  const uint16_t bits = uint16_t(p[0] | (p[1] << 8));  // blocks are only 2-byte aligned
  return __half2float(__ushort_as_half(bits));
}
__device__ __forceinline__ float mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ float add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ float sub(float a, float b) {
  return __fsub_rn(a, b);
}

__device__ __forceinline__ void k4_scale_min(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

__device__ __forceinline__ int q3_k_scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Elements j .. j + 7 of one block (j a multiple of 8: the eight share their scales).
template <DType T>
__device__ __forceinline__ void dequant8(const uint8_t* b, int j, float* v) {
  if constexpr (T == DType::Q8_0) {
    const float d = f16_at(b);
    const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = mul(d, float(qs[j + i]));
  } else if constexpr (T == DType::Q4_0) {
    const float d = f16_at(b);
    const uint8_t* qs = b + 2;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = j + i;
      const int q = e < 16 ? (qs[e] & 0x0f) : (qs[e - 16] >> 4);
      v[i] = mul(d, float(q - 8));
    }
  } else if constexpr (T == DType::Q4_1) {
    const float d = f16_at(b), m = f16_at(b + 2);
    const uint8_t* qs = b + 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = j + i;
      const int q = e < 16 ? (qs[e] & 0x0f) : (qs[e - 16] >> 4);
      v[i] = add(mul(float(q), d), m);
    }
  } else if constexpr (T == DType::Q5_0 || T == DType::Q5_1) {
    constexpr bool kMin = T == DType::Q5_1;
    const float d = f16_at(b), m = kMin ? f16_at(b + 2) : 0.0f;
    const uint8_t* qh = b + (kMin ? 4 : 2);
    const uint8_t* qs = qh + 4;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int e = j + i;
      const int lo = e < 16 ? (qs[e] & 0x0f) : (qs[e - 16] >> 4);
      const int q = lo | (((qh[e / 8] >> (e % 8)) & 1) << 4);  // bit e of the little-endian u32
      v[i] = kMin ? add(mul(float(q), d), m) : mul(float(q - 16), d);
    }
  } else if constexpr (T == DType::Q2_K) {
    // Element e: half h = e / 128, plane s = e % 128 / 32, sub-block 8h + 2s + (e % 32) / 16.
    const uint8_t* scales = b;
    const uint8_t* qs = b + 16;
    const float d = f16_at(b + 80), dmin = f16_at(b + 82);
    const int h = j / 128, s = j % 128 / 32, t = j % 32;
    const uint8_t sc = scales[8 * h + 2 * s + t / 16];
    const float dl = mul(d, float(sc & 0x0f)), ml = mul(dmin, float(sc >> 4));
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = sub(mul(dl, float((qs[32 * h + t + i] >> (2 * s)) & 3)), ml);
  } else if constexpr (T == DType::Q3_K) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* scales = b + 96;
    const float d = f16_at(b + 108);
    const int h = j / 128, s = j % 128 / 32, t = j % 32;
    const float dl = mul(d, float(q3_k_scale(scales, 8 * h + 2 * s + t / 16)));
    const int bit = 1 << (4 * h + s);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int q = ((qs[32 * h + t + i] >> (2 * s)) & 3) - ((hmask[t + i] & bit) ? 0 : 4);
      v[i] = mul(dl, float(q));
    }
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    constexpr bool k5 = T == DType::Q5_K;
    const float d = f16_at(b), dmin = f16_at(b + 2);
    const uint8_t* scales = b + 4;
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (k5 ? 48 : 16);
    const int g = j / 64, half = j % 64 / 32, l = j % 32;
    int sc = 0, m = 0;
    k4_scale_min(scales, 2 * g + half, sc, m);
    const float dl = mul(d, float(sc)), ml = mul(dmin, float(m));
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint8_t byte = qs[32 * g + l + i];
      int q = half == 0 ? (byte & 0x0f) : (byte >> 4);
      if constexpr (k5) {
        if (qh[l + i] & (1u << (2 * g + half))) q += 16;
      }
      v[i] = sub(mul(dl, float(q)), ml);
    }
  } else if constexpr (T == DType::Q6_K) {
    // Element e: half h = e / 128, quarter k = e % 128 / 32, l = e % 32.
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = f16_at(b + 208);
    const int h = j / 128, k = j % 128 / 32, l = j % 32;
    const float ds = mul(d, float(scales[8 * h + 2 * k + l / 16]));
    const uint8_t* lo = ql + 64 * h + (k & 1) * 32;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int nib = k < 2 ? (lo[l + i] & 0x0f) : (lo[l + i] >> 4);
      const int q = (nib | (((qh[32 * h + l + i] >> (2 * k)) & 3) << 4)) - 32;
      v[i] = mul(ds, float(q));
    }
  }
}

template <DType T>
constexpr int kElems =
    T == DType::Q2_K || T == DType::Q3_K || T == DType::Q4_K || T == DType::Q5_K || T == DType::Q6_K
        ? 256
        : 32;
template <DType T>
constexpr int kBytes = T == DType::Q8_0   ? 34
                       : T == DType::Q4_0 ? 18
                       : T == DType::Q4_1 ? 20
                       : T == DType::Q5_0 ? 22
                       : T == DType::Q5_1 ? 24
                       : T == DType::Q2_K ? 84
                       : T == DType::Q3_K ? 110
                       : T == DType::Q4_K ? 144
                       : T == DType::Q5_K ? 176
                                          : 210;

// Eight consecutive elements of a row of blocks, starting at element c (a multiple of 8).
template <DType T>
__device__ __forceinline__ void row8(const uint8_t* row, int c, float* v) {
  dequant8<T>(row + size_t(c / kElems<T>) * kBytes<T>, c % kElems<T>, v);
}

template <DType T>
__global__ void dequant_kernel(const uint8_t* w, int64_t rows, int cols, uint16_t* out) {
  pdl_begin();
  const int64_t units = rows * (cols / 8);
  const int64_t row_bytes = int64_t(cols / kElems<T>) * kBytes<T>;
  for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
       u += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = u / (cols / 8);
    const int c = int(u % (cols / 8)) * 8;
    float v[8];
    row8<T>(w + r * row_bytes, c, v);
    uint4 o;
    o.x = pack_bf16x2(v[0], v[1]);
    o.y = pack_bf16x2(v[2], v[3]);
    o.z = pack_bf16x2(v[4], v[5]);
    o.w = pack_bf16x2(v[6], v[7]);
    reinterpret_cast<uint4*>(out + r * cols)[c / 8] = o;
  }
}

// x[i, :] = bf16(table[tokens[i], :]) widened: the values the bf16 table would give.
template <DType T>
__global__ void embed_kernel(const uint8_t* table, const int32_t* tokens, int n, int d, float* x) {
  pdl_begin();
  const int64_t row_bytes = int64_t(d / kElems<T>) * kBytes<T>;
  const int units = d / 8;
  for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u < int64_t(n) * units;
       u += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = u / units;
    const int c = int(u % units) * 8;
    float v[8];
    row8<T>(table + int64_t(tokens[i]) * row_bytes, c, v);
#pragma unroll
    for (int k = 0; k < 8; ++k) x[i * d + c + k] = bf16_bits_to_float(float_to_bf16_bits(v[k]));
  }
}

constexpr int kWarps = 8;
constexpr int kMaxBatch = 8;

__device__ __forceinline__ void store(void* y, int64_t at, float v, GemvOut out) {
  if (out == GemvOut::F32) {
    static_cast<float*>(y)[at] = v;
  } else if (out == GemvOut::F32Add) {
    static_cast<float*>(y)[at] += v;
  } else {
    static_cast<uint16_t*>(y)[at] = float_to_bf16_bits(v);
  }
}

// One warp per weight row: each lane dequantises groups of eight elements in registers and
// multiplies them with the n (<= NB) activation rows, so the weights are read once for all of them.
// kSwiGLU (n = 1): `up` holds the up rows, and y[r] = bf16(silu(g) * u) as gemv's SwiGLU.
template <DType T, int NB, bool kSwiGLU>
__global__ void __launch_bounds__(kWarps * 32)
    qgemv_kernel(const uint8_t* w, const uint8_t* up, int rows, int cols, const uint16_t* x, int n,
                 void* y, int64_t ldy, int64_t row0, GemvOut out) {
  const int lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + threadIdx.x / 32;
  pdl_begin();
  if (row >= rows) return;
  const int64_t row_bytes = int64_t(cols / kElems<T>) * kBytes<T>;
  const uint8_t* wr = w + row * row_bytes;
  const uint8_t* ur = kSwiGLU ? up + row * row_bytes : nullptr;
  float acc[NB], acc_up = 0;
#pragma unroll
  for (int b = 0; b < NB; ++b) acc[b] = 0;
  for (int c = lane * 8; c < cols; c += 256) {
    float v[8], xs[8];
    row8<T>(wr, c, v);
#pragma unroll
    for (int b = 0; b < NB; ++b) {
      if (b < n) {
        unpack8(__ldg(reinterpret_cast<const uint4*>(x + int64_t(b) * cols + c)), xs);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[b] = fmaf(v[i], xs[i], acc[b]);
      }
    }
    if constexpr (kSwiGLU) {
      row8<T>(ur, c, v);
      unpack8(__ldg(reinterpret_cast<const uint4*>(x + c)), xs);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc_up = fmaf(v[i], xs[i], acc_up);
    }
  }
#pragma unroll
  for (int b = 0; b < NB; ++b) acc[b] = warp_sum(acc[b]);
  if constexpr (kSwiGLU) {
    const float g = bf16_bits_to_float(float_to_bf16_bits(acc[0]));
    const float u = bf16_bits_to_float(float_to_bf16_bits(warp_sum(acc_up)));
    if (lane == 0)
      static_cast<uint16_t*>(y)[row0 + row] = float_to_bf16_bits(g / (1.0f + expf(-g)) * u);
    return;
  }
  if (lane != 0) return;
#pragma unroll
  for (int b = 0; b < NB; ++b) {
    if (b < n) store(y, int64_t(b) * ldy + row0 + row, acc[b], out);
  }
}

template <DType T>
void dequant_t(const void* w, int64_t rows, int cols, bf16_t* out, cudaStream_t s) {
  const int64_t units = rows * (cols / 8);
  const int blocks = int(std::min<int64_t>((units + 255) / 256, 65536));
  launch("dequantize", dequant_kernel<T>, blocks, 256, 0, s, static_cast<const uint8_t*>(w), rows,
         cols, out);
}

template <DType T>
void embed_t(const void* table, const int32_t* tokens, int n, int d, float* x, cudaStream_t s) {
  const int64_t units = int64_t(n) * (d / 8);
  const int blocks = int(std::min<int64_t>((units + 255) / 256, 65536));
  launch("embed_rows_quant", embed_kernel<T>, blocks, 256, 0, s, static_cast<const uint8_t*>(table),
         tokens, n, d, x);
}

template <DType T>
void gemv_t(const QuantGemv& a, cudaStream_t s) {
  const int blocks = (a.rows + kWarps - 1) / kWarps;
  const auto* w = static_cast<const uint8_t*>(a.w);
  const auto* up = static_cast<const uint8_t*>(a.up);
  if (a.out == GemvOut::SwiGLU) {
    launch("gemv_quant", qgemv_kernel<T, 1, true>, blocks, kWarps * 32, 0, s, w, up, a.rows, a.cols,
           a.x, 1, a.y, a.ldy, a.row0, a.out);
  } else if (a.n == 1) {
    launch("gemv_quant", qgemv_kernel<T, 1, false>, blocks, kWarps * 32, 0, s, w, up, a.rows,
           a.cols, a.x, 1, a.y, a.ldy, a.row0, a.out);
  } else {
    launch("gemv_quant", qgemv_kernel<T, kMaxBatch, false>, blocks, kWarps * 32, 0, s, w, up,
           a.rows, a.cols, a.x, a.n, a.y, a.ldy, a.row0, a.out);
  }
}

// The quantised types the device reads, one `case` each calling CALL(type).
#define EP_QUANT_CASES(CALL) \
  case DType::Q8_0:          \
    CALL(DType::Q8_0);       \
  case DType::Q4_0:          \
    CALL(DType::Q4_0);       \
  case DType::Q4_1:          \
    CALL(DType::Q4_1);       \
  case DType::Q5_0:          \
    CALL(DType::Q5_0);       \
  case DType::Q5_1:          \
    CALL(DType::Q5_1);       \
  case DType::Q2_K:          \
    CALL(DType::Q2_K);       \
  case DType::Q3_K:          \
    CALL(DType::Q3_K);       \
  case DType::Q4_K:          \
    CALL(DType::Q4_K);       \
  case DType::Q5_K:          \
    CALL(DType::Q5_K);       \
  case DType::Q6_K:          \
    CALL(DType::Q6_K);

[[noreturn]] void unsupported(const char* what, DType t) {
  fail_message(std::string(what) + ": type id " + std::to_string(uint32_t(t)) +
               " is not a quantised type the device reads");
}

}  // namespace

bool device_quant_type(DType t) {
#define EP_YES(T) return true
  switch (t) {
    EP_QUANT_CASES(EP_YES)
    default:
      return false;
  }
#undef EP_YES
}

void dequantize_rows(DType t, const void* w, int64_t rows, int cols, bf16_t* out, cudaStream_t s) {
#define EP_CALL(T) return dequant_t<T>(w, rows, cols, out, s)
  switch (t) { EP_QUANT_CASES(EP_CALL) default : unsupported("dequantize_rows", t); }
#undef EP_CALL
}

void embed_rows_quant(DType t, const void* table, const int32_t* tokens, int n, int d, float* x,
                      cudaStream_t s) {
#define EP_CALL(T) return embed_t<T>(table, tokens, n, d, x, s)
  switch (t) { EP_QUANT_CASES(EP_CALL) default : unsupported("embed_rows_quant", t); }
#undef EP_CALL
}

void gemv_quant(const QuantGemv& a, cudaStream_t s) {
  if (a.n < 1 || a.n > kGemvMaxBatch || (a.out == GemvOut::SwiGLU && (a.n != 1 || !a.up)))
    fail_message("gemv_quant: " + std::to_string(a.n) + " rows is outside the fused batch");
#define EP_CALL(T) return gemv_t<T>(a, s)
  switch (a.type) { EP_QUANT_CASES(EP_CALL) default : unsupported("gemv_quant", a.type); }
#undef EP_CALL
}

}  // namespace ep::cuda
