// y = x · Wᵀ for a batch of activation rows against a weight matrix in any storage type.
#pragma once

#include "core/matrix_view.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_features.h"

#include <cstdint>
#include <span>

namespace ep::kernels {

// Arithmetic of the matrix kernels.
//   Exact: activations stay f32, every product is exact (weights are expanded to f32 block by
//          block into a cache-sized panel) and each output is summed in the same order whatever
//          the batch size, so a token's result is bit-identical whether it is computed alone or
//          in a batch (the cloud/edge split relies on this). What the fidelity bars (1e-5
//          against the stored weights) are measured with. Every batch size uses the GEMM.
//   Fast:  one or two activation rows (decode) use matrix-vector kernels that stream each
//          weight row once with several partial sums (f32 weights of any float type: exact
//          products, a different summation order); for Q8_0 and Q4_0 weights on CPUs with
//          AVX-512 VNNI the activations are quantised to 8 bits per 32-element block, as
//          llama.cpp does, and multiplied with integer dot products (relative error about 1e-2
//          per output); for F16 weights on AVX-512 CPUs they are rounded to F16, as llama.cpp
//          does (exact products; relative error about 2e-4 per output); Q3_K, Q4_K, Q5_K and Q6_K
//          decode with the same 8-bit activations and integer dot products on AVX2 CPUs. Batches
//          of three or more rows (prefill) use the same 8-bit activations and integer dot
//          products in a GEMM for Q8_0/Q4_0 on those CPUs, and otherwise compute exactly as
//          Exact, except that F16, BF16 and Q3_K ... Q6_K weights on AVX-512 BF16 CPUs are
//          rounded to bf16 with the activations (relative error below 1e-2 per output). Q4_1,
//          Q5_0, Q5_1 and Q2_K are expanded to f32 block by block in both precisions.
enum class Precision { Exact, Fast };

// The weight matrices of the product a caller runs next (one matmul's, or a matmul_multi's in
// order; no null entries). A decode step's threads prefetch the bytes each of them will read first
// there once they have no rows of this product left, instead of idling at its end
// (ThreadPool::Warmup). Only a hint: results never depend on it.
using NextWeights = std::span<const MatrixView* const>;

// x: [n_rows, w.cols] f32, y: [n_rows, w.rows] f32. Runs the best kernels for active_isa() at
// the given precision (the caller's choice, e.g. a Transformer's; never a process-wide setting).
void matmul(const MatrixView& w, const float* x, int64_t n_rows, float* y, ThreadPool& pool,
            Precision precision = Precision::Exact, NextWeights next = {});

// The same with the kernels of a given instruction-set level (lowered to what the CPU has) and
// precision: for tests and benchmarks of each path.
void matmul(const MatrixView& w, const float* x, int64_t n_rows, float* y, ThreadPool& pool,
            Isa isa, Precision precision = Precision::Exact, NextWeights next = {});

// One product of a matmul_multi call: y = x · wᵀ.
struct MatmulOut {
  const MatrixView* w;
  float* y;
};

// Several products of the same activations (all w.cols equal), e.g. the Q, K and V projections:
// results identical to calling matmul for each. For decode in the fast precision it runs as one
// pass over the thread pool (one activation quantisation, one wait at the end instead of one per
// matrix).
void matmul_multi(std::span<const MatmulOut> outs, const float* x, int64_t n_rows, ThreadPool& pool,
                  Precision precision = Precision::Exact, NextWeights next = {});

// Dot product of two f32 vectors with several independent partial sums (vectorisable).
float dot_f32(const float* a, const float* b, int64_t n);

}  // namespace ep::kernels
