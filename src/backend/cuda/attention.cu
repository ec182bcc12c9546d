// Attention kernels: causal flash attention for prefill (tensor cores, FlashAttention-2 style:
// each warp owns 16 query rows and keeps its scores, softmax statistics and output in
// registers), row attention over paged keys for decode (split over key ranges), and the
// log-sum-exp merge of partial results. Softmax runs in base 2 on scores pre-scaled by log2(e).
#include "backend/cuda/bf16_util.cuh"
#include "backend/cuda/check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/launch.cuh"

#include <algorithm>
#include <cmath>

namespace ep::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// ---- tensor-core helpers (mma.sync m16n8k16, bf16 in, f32 accumulate) ----

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Asynchronous 16-byte global -> shared copy (sm_80+); `valid` false zero-fills the destination.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// ---- flash prefill ----

constexpr int kBq = 64;           // queries per block (4 warps x 16)
constexpr int kBk = kPageTokens;  // keys per tile: one cache page

// Q tile plus two stages of (K, V) tiles: the next tile's copy runs while this one is used.
template <int HD>
constexpr int flash_smem_bytes() {
  return (kBq + 4 * kBk) * (HD + 8) * 2;
}

template <int HD>
__global__ void __launch_bounds__(128) flash_kernel(FlashPrefill a) {
  pdl_begin();
  constexpr int LD = HD + 8;  // padded rows: ldmatrix's 8 row addresses hit distinct banks
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t* qs = smem;
  uint16_t* kv_stage = qs + kBq * LD;  // stage b: K at b * 2 * kBk * LD, V after it

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, tig = lane % 4;
  const int qb = gridDim.x - 1 - blockIdx.x;  // the longest (last) query tiles start first
  const int h = blockIdx.y;
  const int kvh = h / (a.n_head / a.n_head_kv);
  const int q0 = qb * kBq;
  const int kv_stride = a.n_head_kv * HD;

  const int last_q = min(q0 + kBq, a.n_q) - 1;
  int j_end = min(a.n_kv, a.q_pos0 + last_q - a.k_pos0 + 1);
  int j_begin = 0;
  if (a.window > 0) j_begin = max(0, a.q_pos0 + q0 - a.window + 1 - a.k_pos0) / kBk * kBk;
  if (a.n_split > 1) {  // this block's share of the key tiles
    const int tiles = max(0, (j_end - j_begin + kBk - 1) / kBk);
    const int per = (tiles + a.n_split - 1) / a.n_split;
    const int begin = j_begin + int(blockIdx.z) * per * kBk;
    j_end = min(j_end, begin + per * kBk);
    j_begin = begin;
  }

  // Issues the copy of the key tile starting at kt into stage b; rows past n_kv become zeros. A
  // tile spans one or more whole pages.
  const int shift = a.kv.page_shift, in_page = (1 << shift) - 1;
  const auto load_tile = [&](int kt, int b) {
    uint16_t* ks = kv_stage + b * 2 * kBk * LD;
    uint16_t* vs = ks + kBk * LD;
    for (int i = tid; i < kBk * HD / 8; i += 128) {
      const int r = i / (HD / 8), c = (i % (HD / 8)) * 8;
      const int j = kt + r;
      const bool valid = j < a.n_kv;
      const size_t row = valid ? (size_t(a.table[j >> shift]) << shift) + (j & in_page) : 0;
      const size_t off = row * kv_stride + kvh * HD + c;
      cp_async16(ks + r * LD + c, a.kv.k + off, valid);
      cp_async16(vs + r * LD + c, a.kv.v + off, valid);
    }
  };
  if (j_begin < j_end) load_tile(j_begin, 0);
  cp_async_commit();

  for (int i = tid; i < kBq * HD / 8; i += 128) {
    const int r = i / (HD / 8), c = (i % (HD / 8)) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (q0 + r < a.n_q)
      val = *reinterpret_cast<const uint4*>(a.q + size_t(q0 + r) * a.q_stride + h * HD + c);
    *reinterpret_cast<uint4*>(qs + r * LD + c) = val;
  }
  __syncthreads();
  uint32_t qf[HD / 16][4];
#pragma unroll
  for (int c = 0; c < HD / 16; ++c) {
    ldmatrix_x4(qf[c],
                qs + (warp * 16 + lane % 8 + ((lane / 8) & 1) * 8) * LD + c * 16 + (lane / 16) * 8);
  }

  float o[HD / 8][4];
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const float scale = a.scale * kLog2e;
  // Positions of this lane's two query rows.
  int qpos[2];
  qpos[0] = a.q_pos0 + q0 + warp * 16 + g;
  qpos[1] = qpos[0] + 8;

  // Tiles entirely before the block's first query and inside its window, and wholly inside the
  // segment, need no mask.
  const int first_qpos = a.q_pos0 + q0;
  for (int kt = j_begin, stage = 0; kt < j_end; kt += kBk, stage ^= 1) {
    if (kt + kBk < j_end) load_tile(kt + kBk, stage ^ 1);  // that stage was released last round
    cp_async_commit();
    cp_async_wait<1>();  // this tile's group has landed (the next one may still be in flight)
    __syncthreads();
    const uint16_t* ks = kv_stage + stage * 2 * kBk * LD;
    const uint16_t* vs = ks + kBk * LD;

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    float s[kBk / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBk / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
      for (int c = 0; c < HD / 16; c += 2) {
        uint32_t kf[4];
        ldmatrix_x4(kf, ks + (nt * 8 + lane % 8) * LD + c * 16 + (lane / 8) * 8);
        mma16816(s[nt], qf[c], kf[0], kf[1]);
        mma16816(s[nt], qf[c + 1], kf[2], kf[3]);
      }
    }
    // Mask (causal, window, past the segment's end) and scale.
    const bool full = kt + kBk <= a.n_kv && a.k_pos0 + kt + kBk - 1 <= first_qpos &&
                      (a.window <= 0 || a.k_pos0 + kt > a.q_pos0 + last_q - a.window);
    if (full) {
#pragma unroll
      for (int nt = 0; nt < kBk / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] *= scale;
      }
    } else {
#pragma unroll
      for (int nt = 0; nt < kBk / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int j = kt + nt * 8 + tig * 2 + (e & 1);
          const int kp = a.k_pos0 + j, p = qpos[e / 2];
          const bool ok = j < a.n_kv && kp <= p && (a.window <= 0 || kp > p - a.window);
          s[nt][e] = ok ? s[nt][e] * scale : -INFINITY;
        }
      }
    }
    // Online softmax for the two rows this lane holds.
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kBk / 8; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * rr], s[nt][2 * rr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[rr], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;
      const float alpha = exp2f(m[rr] - m_use);
      float sum = 0;
#pragma unroll
      for (int nt = 0; nt < kBk / 8; ++nt) {
        s[nt][2 * rr] = exp2f(s[nt][2 * rr] - m_use);
        s[nt][2 * rr + 1] = exp2f(s[nt][2 * rr + 1] - m_use);
        sum += s[nt][2 * rr] + s[nt][2 * rr + 1];
      }
      l[rr] = l[rr] * alpha + sum;  // this lane's share; the row's four lanes add up at the end
      m[rr] = m_new;
#pragma unroll
      for (int i = 0; i < HD / 8; ++i) {
        o[i][2 * rr] *= alpha;
        o[i][2 * rr + 1] *= alpha;
      }
    }
    // O += P V: the score accumulators are already laid out as the A operand.
#pragma unroll
    for (int kk = 0; kk < kBk / 16; ++kk) {
      uint32_t pa[4];
      pa[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dt = 0; dt < HD / 16; ++dt) {
        uint32_t vf[4];
        ldmatrix_x4_trans(
            vf, vs + (kk * 16 + lane % 8 + ((lane / 8) & 1) * 8) * LD + dt * 16 + (lane / 16) * 8);
        mma16816(o[2 * dt], pa, vf[0], vf[1]);
        mma16816(o[2 * dt + 1], pa, vf[2], vf[3]);
      }
    }
    __syncthreads();  // every warp is done with this stage before it is refilled
  }

#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    float lt = l[rr];
    lt += __shfl_xor_sync(0xffffffffu, lt, 1);
    lt += __shfl_xor_sync(0xffffffffu, lt, 2);
    const int qi = q0 + warp * 16 + g + rr * 8;
    if (qi >= a.n_q) continue;
    const float inv = lt > 0 ? 1.0f / lt : 0.0f;
    uint16_t* out =
        a.out + size_t(blockIdx.z) * a.split_out_stride + size_t(qi) * a.out_stride + h * HD;
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) {
      *reinterpret_cast<uint32_t*>(out + i * 8 + tig * 2) =
          pack_bf16x2(o[i][2 * rr] * inv, o[i][2 * rr + 1] * inv);
    }
    if (a.lse && tig == 0) {
      a.lse[size_t(blockIdx.z) * a.split_lse_stride + size_t(qi) * a.n_head + h] =
          lt > 0 ? (m[rr] + log2f(lt)) * kLn2 : -INFINITY;
    }
  }
}

template <int HD>
void launch_flash(const FlashPrefill& a, cudaStream_t s) {
  constexpr int bytes = flash_smem_bytes<HD>();
  // Once per process (and so never inside a graph capture): the attribute is the kernel's own.
  static const bool raised = [] {
    check(
        cudaFuncSetAttribute(flash_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
        "cudaFuncSetAttribute(flash)");
    return true;
  }();
  (void)raised;
  const dim3 grid((a.n_q + kBq - 1) / kBq, a.n_head, std::max(a.n_split, 1));
  launch("attention_flash", flash_kernel<HD>, grid, 128, bytes, s, a);
}

// ---- row attention (decode) ----

// Each group of HD/8 lanes holds one key's 8-element slices; a warp covers 32/(HD/8) keys per
// step and each lane keeps four keys' loads in flight.
template <int HD>
__global__ void __launch_bounds__(128) rows_kernel(RowAttention a) {
  pdl_begin();
  constexpr int LPK = HD / 8, KPW = 32 / LPK, NG = 4 * KPW, KPB = NG, U = 4;
  __shared__ float sm_m[NG], sm_l[NG];
  __shared__ float sm_acc[NG][HD];
  const int split = blockIdx.x, h = blockIdx.y, r = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int sub = lane / LPK, part = lane % LPK, grp = warp * KPW + sub;
  const int kvh = h / (a.n_head / a.n_head_kv);
  const int kv_stride = a.n_head_kv * HD;
  const int pos = a.row_pos[r];
  const int seq = a.row_seq ? a.row_seq[r] : 0;
  const int hi = min(a.row_nkv[r], pos - a.k_pos0 + 1);
  const int lo = a.window > 0 ? max(0, pos - a.window + 1 - a.k_pos0) : 0;
  const int len = max(hi - lo, 0);
  const int chunk = (len + a.n_split - 1) / a.n_split;
  const int begin = lo + split * chunk, end = min(hi, begin + chunk);
  const int32_t* table = a.table + size_t(seq) * a.table_stride;

  float q[8];
  unpack8(*reinterpret_cast<const uint4*>(a.q + size_t(r) * a.q_stride + h * HD + part * 8), q);
  const float scale = a.scale * kLog2e;
#pragma unroll
  for (int i = 0; i < 8; ++i) q[i] *= scale;

  float m = -INFINITY, l = 0, acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // The loop bound depends on the warp only: every lane reaches each shuffle (lanes whose keys
  // are past the end carry -inf scores).
  for (int base = begin + warp * KPW; base < end; base += U * KPB) {
    uint4 kr[U], vr[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = base + sub + u * KPB;
      kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
      if (j < end) {
        const size_t row = (size_t(table[j >> a.kv.page_shift]) << a.kv.page_shift) +
                           (j & ((1 << a.kv.page_shift) - 1));
        const size_t off = row * kv_stride + kvh * HD + part * 8;
        kr[u] = __ldg(reinterpret_cast<const uint4*>(a.kv.k + off));
        vr[u] = __ldg(reinterpret_cast<const uint4*>(a.kv.v + off));
      }
    }
    float s[U];
    float mx = m;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[8];
      unpack8(kr[u], kf);
      float d = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) d = fmaf(q[i], kf[i], d);
#pragma unroll
      for (int o = LPK / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
      s[u] = base + sub + u * KPB < end ? d : -INFINITY;
      mx = fmaxf(mx, s[u]);
    }
    const float m_use = mx == -INFINITY ? 0.0f : mx;  // no key yet: keep everything at zero
    const float alpha = exp2f(m - m_use);
    l *= alpha;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] *= alpha;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float p = exp2f(s[u] - m_use);
      l += p;
      float vf[8];
      unpack8(vr[u], vf);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] = fmaf(p, vf[i], acc[i]);
    }
    m = mx;
  }
  if (part == 0) {
    sm_m[grp] = m;
    sm_l[grp] = l;
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) sm_acc[grp][part * 8 + i] = acc[i];
  __syncthreads();

  float mm = -INFINITY;
  for (int gi = 0; gi < NG; ++gi) mm = fmaxf(mm, sm_m[gi]);
  float lsum = 0;
  if (mm != -INFINITY) {
    for (int gi = 0; gi < NG; ++gi) lsum += sm_l[gi] * exp2f(sm_m[gi] - mm);
  }
  const size_t pr = (size_t(r) * a.n_head + h) * a.n_split + split;
  for (int d = threadIdx.x; d < HD; d += blockDim.x) {
    float od = 0;
    if (lsum > 0) {
      for (int gi = 0; gi < NG; ++gi) od += sm_acc[gi][d] * exp2f(sm_m[gi] - mm);
      od /= lsum;
    }
    a.part_out[pr * HD + d] = od;
  }
  if (threadIdx.x == 0) a.part_lse[pr] = lsum > 0 ? (mm + log2f(lsum)) * kLn2 : -INFINITY;
}

__global__ void merge_kernel(const float* part_out, const float* part_lse, int n_head, int n_split,
                             int hd, uint16_t* out, int64_t out_stride, float* lse) {
  pdl_begin();
  const int h = blockIdx.x, r = blockIdx.y;
  const size_t base = (size_t(r) * n_head + h) * n_split;
  float mx = -INFINITY;
  for (int s = 0; s < n_split; ++s) mx = fmaxf(mx, part_lse[base + s]);
  float wsum = 0;
  if (mx != -INFINITY) {
    for (int s = 0; s < n_split; ++s) wsum += expf(part_lse[base + s] - mx);
  }
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0;
    if (wsum > 0) {
      for (int s = 0; s < n_split; ++s) {
        acc += expf(part_lse[base + s] - mx) * part_out[(base + s) * hd + d];
      }
      acc /= wsum;
    }
    out[size_t(r) * out_stride + size_t(h) * hd + d] = float_to_bf16_bits(acc);
  }
  if (lse && threadIdx.x == 0) lse[size_t(r) * n_head + h] = wsum > 0 ? mx + logf(wsum) : -INFINITY;
}

constexpr int kMaxMergeParts = 32;

__global__ void merge_parts_kernel(uint16_t* a, const float* lse_a, const uint16_t* parts,
                                   const float* part_lse, int n_parts, int64_t part_stride,
                                   int64_t part_lse_stride, int n_head, int hd, int64_t stride) {
  pdl_begin();
  const int h = blockIdx.x, r = blockIdx.y;
  const size_t at = size_t(r) * n_head + h;
  float w[kMaxMergeParts + 1];
  w[0] = lse_a[at];
  float mx = w[0];
  for (int p = 0; p < n_parts; ++p) {
    w[p + 1] = part_lse[size_t(p) * part_lse_stride + at];
    mx = fmaxf(mx, w[p + 1]);
  }
  float sum = 0;
  for (int p = 0; p <= n_parts; ++p) {
    w[p] = mx == -INFINITY ? 0.0f : expf(w[p] - mx);
    sum += w[p];
  }
  const float inv = sum > 0 ? 1.0f / sum : 0.0f;
  uint16_t* pa = a + size_t(r) * stride + size_t(h) * hd;
  const uint16_t* pb = parts + size_t(r) * stride + size_t(h) * hd;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = w[0] * bf16_bits_to_float(pa[d]);
    for (int p = 0; p < n_parts; ++p)
      acc += w[p + 1] * bf16_bits_to_float(pb[size_t(p) * part_stride + d]);
    pa[d] = float_to_bf16_bits(acc * inv);
  }
}

}  // namespace

int page_shift_of(int64_t page_tokens) {
  return page_tokens == 16 ? 4 : page_tokens == 32 ? 5 : page_tokens == 64 ? 6 : -1;
}

void merge_parts(bf16_t* a, const float* lse_a, const bf16_t* parts, const float* part_lse,
                 int n_parts, int64_t part_stride, int64_t part_lse_stride, int n_rows, int n_head,
                 int head_dim, int64_t stride, cudaStream_t s) {
  if (n_rows == 0) return;
  if (n_parts < 1 || n_parts > kMaxMergeParts)
    fail_message("merge_parts: " + std::to_string(n_parts) + " parts; 1 to 32 are taken");
  launch("merge_parts", merge_parts_kernel, dim3(n_head, n_rows), 128, 0, s, a, lse_a, parts,
         part_lse, n_parts, part_stride, part_lse_stride, n_head, head_dim, stride);
}

bool flash_supported(int head_dim) {
  return head_dim == 64 || head_dim == 128;
}

void attention_flash(const FlashPrefill& a, cudaStream_t s) {
  if (a.n_q == 0) return;
  if (a.n_split > 1 && !a.lse) fail_message("attention_flash: split keys need the lse output");
  switch (a.head_dim) {
    case 64:
      launch_flash<64>(a, s);
      break;
    case 128:
      launch_flash<128>(a, s);
      break;
    default:
      fail_message("attention_flash: head_dim " + std::to_string(a.head_dim) + " is not 64 or 128");
  }
}

bool rows_supported(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

void attention_rows(const RowAttention& a, cudaStream_t s) {
  if (a.n_rows == 0) return;
  const dim3 grid(a.n_split, a.n_head, a.n_rows);
  switch (a.head_dim) {
    case 16:
      launch("attention_rows", rows_kernel<16>, grid, 128, 0, s, a);
      break;
    case 32:
      launch("attention_rows", rows_kernel<32>, grid, 128, 0, s, a);
      break;
    case 64:
      launch("attention_rows", rows_kernel<64>, grid, 128, 0, s, a);
      break;
    case 128:
      launch("attention_rows", rows_kernel<128>, grid, 128, 0, s, a);
      break;
    default:
      fail_message("attention_rows: head_dim " + std::to_string(a.head_dim) +
                   " is not 16, 32, 64 or 128");
  }
}

void merge_partials(const float* part_out, const float* part_lse, int n_rows, int n_head,
                    int n_split, int head_dim, bf16_t* out, int64_t out_stride, float* lse,
                    cudaStream_t s) {
  if (n_rows == 0) return;
  launch("merge_partials", merge_kernel, dim3(n_head, n_rows), 128, 0, s, part_out, part_lse,
         n_head, n_split, head_dim, out, out_stride, lse);
}

}  // namespace ep::cuda
