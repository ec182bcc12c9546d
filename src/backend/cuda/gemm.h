// Batched matrix products y[n, out] (= or +=) x[n, in] W^T with bf16 operands and f32
// accumulation through cuBLASLt. The first product of each shape times the library's candidate
// algorithms on scratch outputs and keeps the fastest (never while a graph is being captured);
// if cuBLASLt declines a shape, cuBLAS's GemmEx does it.
#pragma once

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kernels.h"

#include <cublasLt.h>

#include <map>
#include <tuple>

namespace ep::cuda {

class Gemm {
 public:
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // y_type: CUDA_R_32F or CUDA_R_16BF; accumulate adds to y (f32 only).
  void run(const bf16_t* x, int64_t n, int64_t in, const bf16_t* w, int64_t out, void* y,
           cudaDataType y_type, bool accumulate, cudaStream_t s);

 private:
  struct Plan {
    bool lt = false;  // false: GemmEx
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int, bool>;
  Plan& plan(const Key& k, const bf16_t* x, const bf16_t* w, cudaStream_t s);

  cublasHandle_t blas_ = nullptr;
  cublasLtHandle_t lt_ = nullptr;
  DeviceBuffer<uint8_t> workspace_;
  std::map<Key, Plan> plans_;
};

}  // namespace ep::cuda
