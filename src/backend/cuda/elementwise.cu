// Row-wise and element-wise kernels: embedding lookup, RMSNorm, bias + RoPE + KV append, SwiGLU,
// argmax, random fills.
#include "backend/cuda/bf16_util.cuh"
#include "backend/cuda/check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

#include <cfloat>

namespace ep::cuda {
namespace {

__global__ void embed_kernel(const uint16_t* table, const int32_t* tokens, int d, float* x) {
  pdl_begin();
  const int i = blockIdx.x;
  const uint16_t* row = table + size_t(tokens[i]) * d;
  for (int j = threadIdx.x; j < d; j += blockDim.x)
    x[size_t(i) * d + j] = bf16_bits_to_float(row[j]);
}

__global__ void rmsnorm_kernel(const float* x, const float* w, int d, float eps, uint16_t* out) {
  pdl_begin();
  __shared__ float partial[32];
  const int i = blockIdx.x;
  const float* row = x + size_t(i) * d;
  float ss = 0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) ss += row[j] * row[j];
  ss = warp_sum(ss);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
    t = warp_sum(t);
    if (threadIdx.x == 0) partial[0] = t;
  }
  __syncthreads();
  const float inv = rsqrtf(partial[0] / float(d) + eps);
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    out[size_t(i) * d + j] = float_to_bf16_bits(row[j] * inv * w[j]);
  }
}

__global__ void qkv_rope_kernel(QkvRope a) {
  pdl_begin();
  const int t = blockIdx.x;
  const int hd = a.head_dim, half = hd / 2;
  const int q_dim = a.n_head * hd, kv_dim = a.n_head_kv * hd, width = q_dim + 2 * kv_dim;
  const float* row = a.qkv + size_t(t) * width;
  const int64_t pos = a.pos[t];
  const size_t slot = size_t(a.slot[t]);
  // The token's cos/sin per frequency, shared by all its heads. Angles in double, like the CPU
  // reference.
  extern __shared__ float cs[];  // [half] cos, then [half] sin
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double sd, cd;
    sincos(double(pos) * a.inv_freq[i], &sd, &cd);
    cs[i] = float(cd);
    cs[half + i] = float(sd);
  }
  __syncthreads();
  // Rotated pairs of q heads, then of k heads.
  for (int idx = threadIdx.x; idx < (a.n_head + a.n_head_kv) * half; idx += blockDim.x) {
    const int head = idx / half, i = idx % half;
    const int ia = a.adjacent_pairs ? 2 * i : i;
    const int ib = a.adjacent_pairs ? 2 * i + 1 : i + half;
    const int base = head * hd;  // q heads then k heads are contiguous in the row
    float x0 = row[base + ia], x1 = row[base + ib];
    if (a.bias) {
      x0 += a.bias[base + ia];
      x1 += a.bias[base + ib];
    }
    const float c = cs[i], s = cs[half + i];
    const float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
    if (head < a.n_head) {
      a.q[size_t(t) * q_dim + base + ia] = float_to_bf16_bits(y0);
      a.q[size_t(t) * q_dim + base + ib] = float_to_bf16_bits(y1);
    } else {
      const int kb = base - q_dim;
      a.k_cache[slot * kv_dim + kb + ia] = float_to_bf16_bits(y0);
      a.k_cache[slot * kv_dim + kb + ib] = float_to_bf16_bits(y1);
    }
  }
  for (int j = threadIdx.x; j < kv_dim; j += blockDim.x) {
    float v = row[q_dim + kv_dim + j];
    if (a.bias) v += a.bias[q_dim + kv_dim + j];
    a.v_cache[slot * kv_dim + j] = float_to_bf16_bits(v);
  }
}

__global__ void swiglu_kernel(const uint16_t* gu, int ff, uint16_t* out) {
  pdl_begin();
  const size_t i = blockIdx.y;
  const uint4* g = reinterpret_cast<const uint4*>(gu + i * 2 * ff);
  const uint4* u = reinterpret_cast<const uint4*>(gu + i * 2 * ff + ff);
  uint4* o = reinterpret_cast<uint4*>(out + i * ff);
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < ff / 8; j += gridDim.x * blockDim.x) {
    float gf[8], uf[8];
    unpack8(g[j], gf);
    unpack8(u[j], uf);
    uint32_t r[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float a = gf[2 * e] / (1.0f + expf(-gf[2 * e])) * uf[2 * e];
      const float b = gf[2 * e + 1] / (1.0f + expf(-gf[2 * e + 1])) * uf[2 * e + 1];
      r[e] = pack_bf16x2(a, b);
    }
    o[j] = make_uint4(r[0], r[1], r[2], r[3]);
  }
}

__global__ void add_rows_kernel(float* x, const float* bias, int d) {
  pdl_begin();
  for (int j = threadIdx.x; j < d; j += blockDim.x) x[size_t(blockIdx.x) * d + j] += bias[j];
}

__global__ void argmax_kernel(const float* logits, int vocab, int32_t* out) {
  pdl_begin();
  __shared__ float best_v[32];
  __shared__ int best_i[32];
  const float* row = logits + size_t(blockIdx.x) * vocab;
  float bv = -FLT_MAX;
  int bi = 0x7fffffff;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float v = row[j];
    if (v > bv) {
      bv = v;
      bi = j;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) {
      bv = ov;
      bi = oi;
    }
  }
  if (threadIdx.x % 32 == 0) {
    best_v[threadIdx.x / 32] = bv;
    best_i[threadIdx.x / 32] = bi;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w) {
      if (best_v[w] > bv || (best_v[w] == bv && best_i[w] < bi)) {
        bv = best_v[w];
        bi = best_i[w];
      }
    }
    out[blockIdx.x] = bi;
  }
}

__device__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void fill_random_kernel(uint16_t* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t h = mix64(seed * 0x9e3779b97f4a7c15ull + uint64_t(i));
    const float u = float(h >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    p[i] = float_to_bf16_bits((2.0f * u - 1.0f) * scale);
  }
}

__global__ void fill_value_kernel(float* p, int64_t n, float value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    p[i] = value;
  }
}

__global__ void gather_rows_kernel(const float* x, const int32_t* rows, int d, float* out) {
  pdl_begin();
  const float* src = x + size_t(rows[blockIdx.x]) * d;
  float* dst = out + size_t(blockIdx.x) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) dst[i] = src[i];
}

__global__ void to_bf16_kernel(const float* in, int64_t n, uint16_t* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = float_to_bf16_bits(in[i]);
  }
}

__global__ void mask_logits_kernel(float* logits, int vocab, int n_keep, const int32_t* masked,
                                   int n_masked) {
  pdl_begin();
  float* row = logits + size_t(blockIdx.x) * vocab;
  for (int j = n_keep + threadIdx.x; j < vocab; j += blockDim.x) row[j] = -INFINITY;
  for (int i = threadIdx.x; i < n_masked; i += blockDim.x) row[masked[i]] = -INFINITY;
}

int grid_for(int64_t n, int threads) {
  return int(std::min<int64_t>((n + threads - 1) / threads, 65536));
}

}  // namespace

void embed_rows(const bf16_t* table, const int32_t* tokens, int n, int d, float* x,
                cudaStream_t s) {
  launch("embed_rows", embed_kernel, n, 256, 0, s, table, tokens, d, x);
}

void rmsnorm(const float* x, const float* w, int n, int d, float eps, bf16_t* out, cudaStream_t s) {
  launch("rmsnorm", rmsnorm_kernel, n, 256, 0, s, x, w, d, eps, out);
}

void qkv_rope(const QkvRope& a, cudaStream_t s) {
  launch("qkv_rope", qkv_rope_kernel, a.n, 256, size_t(a.head_dim) * sizeof(float), s, a);
}

void swiglu(const bf16_t* gu, int n, int ff, bf16_t* out, cudaStream_t s) {
  if (ff % 8 != 0) fail_message("swiglu: n_ff " + std::to_string(ff) + " is not a multiple of 8");
  for (int r0 = 0; r0 < n; r0 += 65535) {  // grid.y is limited to 65535
    const dim3 grid(unsigned(std::min((ff / 8 + 255) / 256, 64)),
                    unsigned(std::min(n - r0, 65535)));
    launch("swiglu", swiglu_kernel, grid, 256, 0, s, gu + size_t(r0) * 2 * ff, ff,
           out + size_t(r0) * ff);
  }
}

void add_rows(float* x, const float* bias, int n, int d, cudaStream_t s) {
  launch("add_rows", add_rows_kernel, n, 256, 0, s, x, bias, d);
}

void mask_logits(float* logits, int n, int vocab, int n_keep, const int32_t* masked, int n_masked,
                 cudaStream_t s) {
  if (n == 0 || (n_keep >= vocab && n_masked == 0)) return;
  launch("mask_logits", mask_logits_kernel, dim3(n), 256, 0, s, logits, vocab, n_keep, masked,
         n_masked);
}

void argmax_rows(const float* logits, int n, int vocab, int32_t* out, cudaStream_t s) {
  launch("argmax_rows", argmax_kernel, n, 1024, 0, s, logits, vocab, out);
}

void fill_random(bf16_t* p, int64_t n, uint64_t seed, float scale, cudaStream_t s) {
  fill_random_kernel<<<grid_for(n, 256), 256, 0, s>>>(p, n, seed, scale);
  check_launch("fill_random");
}

void gather_rows(const float* x, const int32_t* rows, int n, int d, float* out, cudaStream_t s) {
  if (n == 0) return;
  launch("gather_rows", gather_rows_kernel, dim3(n), 256, 0, s, x, rows, d, out);
}

void to_bf16(const float* in, int64_t n, bf16_t* out, cudaStream_t s) {
  if (n == 0) return;
  to_bf16_kernel<<<grid_for(n, 256), 256, 0, s>>>(in, n, out);
  check_launch("to_bf16");
}

void fill_value(float* p, int64_t n, float value, cudaStream_t s) {
  fill_value_kernel<<<grid_for(n, 256), 256, 0, s>>>(p, n, value);
  check_launch("fill_value");
}

}  // namespace ep::cuda
