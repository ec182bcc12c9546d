// CUDA and cuBLAS return codes turned into ep::Error, naming the call that failed. Defined in
// check.cpp: the messages are formatted by the C++ compiler (nvcc cannot check fmt's consteval
// format strings).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

namespace ep::cuda {

void check(cudaError_t e, const char* what);
void check(cublasStatus_t s, const char* what);
// After a kernel launch: launch-configuration errors surface here, not at the next sync.
void check_launch(const char* kernel);
[[noreturn]] void fail_message(const std::string& message);

}  // namespace ep::cuda
