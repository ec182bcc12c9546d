// Internal: the per-instruction-set matrix kernels behind kernels::matmul.
#pragma once

#include "core/aligned_vector.h"
#include "core/dtype.h"
#include "core/matrix_view.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_features.h"

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace ep::kernels::detail {

struct MatmulKernels {
  // y[r] = w.row(r) · x for r in [r0, r1), f32 activations (exact products, f32 sums).
  void (*matvec)(const MatrixView& w, const float* x, float* y, int64_t r0, int64_t r1);
  // Prefill GEMM over whole panels of `panel_rows` weight rows: for panels [p0, p1),
  // y[t * w.rows + r] = w.row(r) · x[t] for every token t < n_tok. xs: the activations as `pack`
  // laid them out, or x (n_tok × w.cols) itself where pack is null. `scratch` holds
  // scratch_floats floats (per calling thread).
  void (*gemm)(const MatrixView& w, const float* xs, int64_t n_tok, float* y, int64_t p0,
               int64_t p1, float* scratch);
  int64_t panel_rows;
  int64_t scratch_floats;
  // Lays out the token tiles [t0, t1) (pack_tokens tokens each) of x (n_tok × k) for gemm in a
  // buffer of n_tiles · pack_tokens · k floats; null: gemm reads x as it is.
  void (*pack)(const float* x, int64_t n_tok, int64_t k, int64_t t0, int64_t t1, float* xs);
  int64_t pack_tokens;
};

// Activations quantised to 8 bits per 32-element block, laid out for the 8-bit decode kernels
// (VNNI and AVX2):
// q [n_blocks * 32], scale [n_blocks * 8] (each block's d repeated 8 times) and corr
// [n_blocks * 8] (-8 · Σq of the block in its first lane, zeros elsewhere), padded.
// For Q4_0, groups of four blocks are also stored nibble-ordered: q4 holds, per group, the first
// halves (elements 0-15) of the four blocks, then their second halves, with scale4 and corr4 per
// group of 16 lanes (block k of the group in lanes 4k..4k+3; corr4 in lane 4k).
struct QuantizedActivations {
  int64_t n_blocks = 0;
  AlignedVector<int8_t> q;
  AlignedVector<float> scale;
  AlignedVector<int32_t> corr;   // -8 · Σ q per block (Q4_0), lane 0 of the block's 8
  AlignedVector<int32_t> corr8;  // -128 · Σ q per block (Q8_0)
  AlignedVector<int8_t> q4;
  AlignedVector<float> scale4;
  AlignedVector<int32_t> corr4;
};

// 127 / m for an activation block of absolute maximum m, the factor every 8-bit quantiser
// multiplies by before rounding; 0 where that is not finite (m = 0, m below ~4e-37, or m not
// finite), so such a block quantises to zeros instead of to ±inf or NaN.
inline float quantize_inverse_scale(float m) {
  const float id = 127.0f / m;
  return id <= std::numeric_limits<float>::max() ? id : 0.0f;
}

// Fills q4, scale4 and corr4 of `a` from its q, scale and corr.
void order_q4_groups(QuantizedActivations& a);

struct QuantizedKernels {
  // Quantises n (a multiple of 32) activations.
  void (*quantize)(const float* x, int64_t n, QuantizedActivations& out);
  // y[r] = w.row(r) · x for r in [r0, r1), w Q8_0, Q4_0, Q4_K, Q5_K or Q6_K with
  // w.cols == 32 · n_blocks.
  void (*matvec)(const MatrixView& w, const QuantizedActivations& x, float* y, int64_t r0,
                 int64_t r1);
};

// y[r] = w.row(r) · x for r in [r0, r1), w Q3_K, Q4_K, Q5_K or Q6_K with w.cols == 32 · n_blocks:
// integer dot products per activation block (reads q, scale and corr, which both quantisers
// fill). Only with AVX2 + FMA + F16C; the matvec of both kernel sets below hands these types to it.
void matvec_k_int8_avx2(const MatrixView& w, const QuantizedActivations& x, float* y, int64_t r0,
                        int64_t r1);
// Expands n values (whole blocks) of Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q5_K or Q6_K to f32,
// bit-identical to dequantize_row, and returns true; false (nothing written) for any other type
// (Q2_K included). Only with AVX2 + F16C.
bool expand_blocks_avx2(DType type, const void* src, float* dst, int64_t n);

constexpr bool has_int8_k_kernel(DType t) {
  return t == DType::Q3_K || t == DType::Q4_K || t == DType::Q5_K || t == DType::Q6_K;
}

const QuantizedKernels& quantized_kernels_vnni();  // only with AVX-512 F/BW/VL/DQ + VNNI
// Does not fill corr8 (its Q8_0 kernel needs no correction).
const QuantizedKernels& quantized_kernels_avx2();  // only with AVX2 + FMA + F16C

// Activations rounded to F16 (nearest even) for the F16-weight decode kernel: h [n], padded and
// 64-byte aligned.
struct HalfActivations {
  int64_t n = 0;
  AlignedVector<uint16_t> h;
};

struct HalfKernels {
  void (*convert)(const float* x, int64_t n, HalfActivations& out);
  // y[r] = w.row(r) · x for r in [r0, r1), w F16 with w.cols == x.n.
  void (*matvec)(const MatrixView& w, const HalfActivations& x, float* y, int64_t r0, int64_t r1);
};

const HalfKernels& half_kernels_avx512();  // only with AVX-512 F/BW/VL + F16C

// A batch of activation rows quantised for an 8-bit GEMM: per token, k values q (in [-127, 127],
// d = max|x| / 127 per 32-element block as above) in the GEMM's form (QuantizedGemm::
// activation_bytes each: VNNI q + 128 as unsigned bytes, AVX2 int16 for Q8_0 and signed bytes
// for Q4_0) and the block scales d.
struct QuantizedBatch {
  int64_t n_tok = 0, k = 0;
  std::vector<uint8_t> q;     // [n_tok * k * activation_bytes]
  std::vector<float> d;       // [n_tok * k / 32]
  std::vector<int32_t> sums;  // [n_tok * k / 32] Σ q per block (AVX2 Q4_0 only)
};

struct QuantizedGemm {
  // Quantises tokens [t0, t1) of x ([n_tok, k] f32, k a multiple of 32) into out (sized by the
  // caller).
  void (*quantize)(const float* x, int64_t k, int64_t t0, int64_t t1, QuantizedBatch& out);
  // For panels [p0, p1) of panel_rows weight rows: y[t * w.rows + r] = w.row(r) · x[t] for every
  // token; w Q8_0 or Q4_0. `scratch` is the calling thread's packing buffer.
  void (*gemm)(const MatrixView& w, const QuantizedBatch& x, float* y, int64_t p0, int64_t p1,
               std::vector<uint8_t>& scratch);
  int64_t panel_rows;
  int64_t activation_bytes;  // bytes per activation value in QuantizedBatch::q
};

const QuantizedGemm& quantized_gemm_vnni();  // only with AVX-512 F/BW/VL/DQ + VNNI
// The AVX2 GEMM for weight type w (Q8_0 or Q4_0: each reads its own activation form).
const QuantizedGemm& quantized_gemm_avx2(DType w);  // only with AVX2 + FMA + F16C

// Activations rounded to bf16, as pairs of consecutive columns (one uint32: the even column in
// the low half), in token tiles of Bf16Gemm::tile_tokens: for the column block starting at k0
// (KC wide, or the rest), tile t's kp × tile_tokens pairs start at pairs[k0 / 2 · n_pad +
// t · kp · tile_tokens], token m of the tile's pair p at offset p · tile_tokens + m. k2 = the
// columns rounded up to even (a zero pads an odd row); n_pad = n_tok rounded up to tile_tokens.
struct Bf16Batch {
  int64_t n_tok = 0, k2 = 0, n_pad = 0;
  std::vector<uint32_t> pairs;
};

struct Bf16Gemm {
  // Converts the token tiles [tile0, tile1) of x ([n_tok, k] f32) into out (sized by the caller).
  void (*convert)(const float* x, int64_t k, int64_t tile0, int64_t tile1, Bf16Batch& out);
  // As QuantizedGemm::gemm, for F16, BF16, Q3_K, Q4_K, Q5_K or Q6_K weights (rounded to bf16).
  void (*gemm)(const MatrixView& w, const Bf16Batch& x, float* y, int64_t p0, int64_t p1,
               std::vector<uint8_t>& scratch);
  int64_t panel_rows;
  int64_t tile_tokens;
};

const Bf16Gemm& bf16_gemm_avx512();  // only with AVX-512 F/BW/VL/DQ + BF16

// Rows per chunk of a fast decode pass over `total` weight rows: enough to keep the prefetchers
// busy, enough chunks to balance the threads.
int64_t decode_grain(int64_t total, const ThreadPool& pool);

// The warm-up ranges a fast decode product hands the pool for the product named next
// (kernels::NextWeights, no null entries): for each participant the start of its run there, at
// most 512 KiB, within its run and one matrix. Empty if nothing is named.
void decode_warmups(std::span<const MatrixView* const> next, const ThreadPool& pool, Isa isa,
                    std::vector<ThreadPool::Warmup>& warm);

const MatmulKernels& matmul_kernels_scalar();
const MatmulKernels& matmul_kernels_avx2();    // only on CPUs with AVX2 + FMA + F16C
const MatmulKernels& matmul_kernels_avx512();  // only on CPUs with AVX-512 F/BW/VL/DQ

}  // namespace ep::kernels::detail
