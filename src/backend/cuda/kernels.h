// Launchers of the backend's CUDA kernels. Pointers are device pointers; bf16 tensors are passed
// as their raw 16-bit patterns (bf16_t) so that C++ translation units can call these too.
#pragma once

#include "core/dtype.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace ep::cuda {

using bf16_t = uint16_t;

// Tokens per KV-cache page; a page holds one layer's keys (or values) of 64 consecutive tokens of
// one sequence, [64][n_head_kv * head_dim]. The flash kernel's key tile is one page.
inline constexpr int kPageTokens = 64;

// ---- elementwise (elementwise.cu) ----------------------------------------------------------

// x[i, :] = table[tokens[i], :] widened to f32.
void embed_rows(const bf16_t* table, const int32_t* tokens, int n, int d, float* x, cudaStream_t s);
// out = bf16(x / rms(x) * w), row by row; x [n, d] f32, w [d] f32.
void rmsnorm(const float* x, const float* w, int n, int d, float eps, bf16_t* out, cudaStream_t s);

struct QkvRope {
  const float* qkv = nullptr;        // [n, q_dim + 2 kv_dim] f32: q | k | v of each token
  const float* bias = nullptr;       // [q_dim + 2 kv_dim] or null
  const int32_t* pos = nullptr;      // [n] token positions
  const int32_t* slot = nullptr;     // [n] cache rows (page * kPageTokens + offset)
  const double* inv_freq = nullptr;  // [head_dim / 2]
  bool adjacent_pairs = false;       // RopeLayout::AdjacentPairs, else RotateHalf
  int n = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  bf16_t* q = nullptr;        // [n, q_dim] rotated queries
  bf16_t* k_cache = nullptr;  // this layer's key pages: row `slot` gets the rotated key
  bf16_t* v_cache = nullptr;
};
// Adds the biases, rotates q and k, writes q and appends k and v to the paged cache.
void qkv_rope(const QkvRope& a, cudaStream_t s);

// out[i, j] = silu(gu[i, j]) * gu[i, ff + j]; gu [n, 2 ff] (gate | up), out [n, ff].
void swiglu(const bf16_t* gu, int n, int ff, bf16_t* out, cudaStream_t s);
// x[i, :] += bias for every row.
void add_rows(float* x, const float* bias, int n, int d, cudaStream_t s);
// logits[i, j] = -inf for j >= n_keep and for the ids in masked[0, n_masked), every row.
void mask_logits(float* logits, int n, int vocab, int n_keep, const int32_t* masked, int n_masked,
                 cudaStream_t s);
// out[i] = index of the largest logits[i, :] (the first on ties).
void argmax_rows(const float* logits, int n, int vocab, int32_t* out, cudaStream_t s);
// Fills n elements with uniform values in [-scale, scale] from a counter hash of (seed, index).
void fill_random(bf16_t* p, int64_t n, uint64_t seed, float scale, cudaStream_t s);
void fill_value(float* p, int64_t n, float value, cudaStream_t s);
// out[i, :] = x[rows[i], :] for i < n; x and out [., d] f32.
void gather_rows(const float* x, const int32_t* rows, int n, int d, float* out, cudaStream_t s);
// out[i] = bf16(in[i]) (round to nearest even).
void to_bf16(const float* in, int64_t n, bf16_t* out, cudaStream_t s);

// ---- matrix-vector product (gemv.cu) --------------------------------------------------------

enum class GemvOut { F32, F32Add, BF16, SwiGLU };
// y[r] (=, +=) sum_c w[r, c] x[c]; w [rows, cols] bf16 with cols % 8 == 0. Decode's batch-1 path:
// bandwidth bound, 16-byte loads, one warp per row. SwiGLU: w is [2 rows, cols] (gate rows, then
// up rows) and y[r] = bf16(silu(g) * u) with g, u the bf16-rounded gate_r . x and up_r . x: the
// gate|up product and SwiGLU in one, with swiglu()'s arithmetic.
void gemv(const bf16_t* w, const bf16_t* x, int rows, int cols, void* y, GemvOut out,
          cudaStream_t s);

// ---- quantised weights (quant.cu) ----------------------------------------------------------
// Weights in a GGUF block type, [rows, cols] with cols a multiple of the type's block: the device
// computes the host's dequantize_row values bit for bit.

// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K ... Q6_K.
bool device_quant_type(DType t);
// out [rows, cols] = bf16 of the dequantised w.
void dequantize_rows(DType t, const void* w, int64_t rows, int cols, bf16_t* out, cudaStream_t s);
// embed_rows of a quantised table: each value rounded to bf16, then widened (as the bf16 table).
void embed_rows_quant(DType t, const void* table, const int32_t* tokens, int n, int d, float* x,
                      cudaStream_t s);

// Activation rows one fused GEMV multiplies (the weights are read once for all of them).
inline constexpr int kGemvMaxBatch = 8;
// y[b, row0 + r] (=, +=) sum_c w[r, c] x[b, c] for b < n, dequantising w in registers, f32
// accumulation; y's rows are ldy apart. SwiGLU (n = 1): `up` holds the up rows in w's type and
// y[row0 + r] = bf16(silu(g) * u) as gemv() computes it.
struct QuantGemv {
  DType type = DType::Q8_0;
  const void* w = nullptr;
  const void* up = nullptr;
  int rows = 0, cols = 0;
  const bf16_t* x = nullptr;  // [n, cols]
  int n = 1;
  void* y = nullptr;
  int64_t ldy = 0, row0 = 0;
  GemvOut out = GemvOut::F32;
};
void gemv_quant(const QuantGemv& a, cudaStream_t s);

// ---- attention (attention.cu) ---------------------------------------------------------------

// Keys and values of one layer in pages of 2^page_shift tokens: key j of a sequence whose
// page-table row is `table` lives at row table[j >> page_shift] * 2^page_shift + j % 2^page_shift,
// n_head_kv * head_dim wide. The engine's own sequences use pages of kPageTokens; the serving
// engine's block pool uses its block size (16, 32 or 64: a flash key tile spans whole pages).
struct PagedLayer {
  const bf16_t* k = nullptr;
  const bf16_t* v = nullptr;
  int page_shift = 6;
};
static_assert(kPageTokens == 64, "PagedLayer's default page_shift is log2(kPageTokens)");
// log2 of a page size the kernels take (16, 32 or 64 tokens), or -1.
int page_shift_of(int64_t page_tokens);

// Causal flash attention of n_q queries of one sequence over its first n_kv keys (positions
// k_pos0 + j), tensor cores, head_dim 64 or 128. Query i is at position q_pos0 + i.
struct FlashPrefill {
  const bf16_t* q = nullptr;
  int64_t q_stride = 0;  // elements between query rows
  int n_q = 0, q_pos0 = 0;
  PagedLayer kv;
  const int32_t* table = nullptr;  // this sequence's page-table row
  int n_kv = 0, k_pos0 = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 1.0f;
  int window = 0;         // > 0: sliding window
  bf16_t* out = nullptr;  // [n_q, out_stride], head h at h * head_dim
  int64_t out_stride = 0;
  float* lse = nullptr;  // [n_q, n_head] natural log, or null
  // Keys split into n_split ranges, one block each (a long shared prefix attended by few
  // queries fills the chip); range s writes its own result at out + s * split_out_stride and
  // lse + s * split_lse_stride (lse required), for merge_parts to combine.
  int n_split = 1;
  int64_t split_out_stride = 0, split_lse_stride = 0;
};
bool flash_supported(int head_dim);
void attention_flash(const FlashPrefill& a, cudaStream_t s);

// Attention of independent query rows (decode: one row per sequence) over paged keys, split into
// n_split key ranges whose partial results merge_partials combines (flash-decoding).
struct RowAttention {
  const bf16_t* q = nullptr;
  int64_t q_stride = 0;
  int n_rows = 0;
  const int32_t* row_pos = nullptr;  // [n_rows] query positions
  const int32_t* row_seq = nullptr;  // [n_rows] page-table rows
  const int32_t* row_nkv = nullptr;  // [n_rows] keys in the row's segment
  PagedLayer kv;
  const int32_t* table = nullptr;  // [sequences, table_stride]
  int table_stride = 0;
  int k_pos0 = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 1.0f;
  int window = 0;
  int n_split = 1;
  float* part_out = nullptr;  // [n_rows, n_head, n_split, head_dim]
  float* part_lse = nullptr;  // [n_rows, n_head, n_split]
};
bool rows_supported(int head_dim);
void attention_rows(const RowAttention& a, cudaStream_t s);

// a[r, h] = the exact combination of attention results over disjoint key sets, each normalised
// over its own keys with its natural log-sum-exp: a itself (lse_a) and n_parts results at
// parts + p * part_stride (lse at part_lse + p * part_lse_stride): the relay fusion of a shared
// prefix's parts with a sequence's own part. a and each part are [n_rows, stride] bf16, the lses
// [n_rows, n_head].
void merge_parts(bf16_t* a, const float* lse_a, const bf16_t* parts, const float* part_lse,
                 int n_parts, int64_t part_stride, int64_t part_lse_stride, int n_rows, int n_head,
                 int head_dim, int64_t stride, cudaStream_t s);

// The log-sum-exp merge: for each (row, head), combines n_split partial results (each normalised
// over its own keys, with its log-sum-exp) into the exact result over all their keys.
void merge_partials(const float* part_out, const float* part_lse, int n_rows, int n_head,
                    int n_split, int head_dim, bf16_t* out, int64_t out_stride, float* lse,
                    cudaStream_t s);

}  // namespace ep::cuda
