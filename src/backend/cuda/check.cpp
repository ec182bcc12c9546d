#include "backend/cuda/check.h"

#include "core/error.h"

namespace ep::cuda {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA: {} failed: {}", what, cudaGetErrorString(e));
}

void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuBLAS: {} failed: {}", what, cublasGetStatusString(s));
}

void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

void fail_message(const std::string& message) {
  throw Error(message);
}

}  // namespace ep::cuda
