#include "backend/cuda/gemm.h"

#include <algorithm>
#include <vector>

namespace ep::cuda {

namespace {
constexpr size_t kWorkspaceBytes = size_t(32) << 20;
}

Gemm::Gemm() {
  check(cublasCreate(&blas_), "cublasCreate");
  check(cublasLtCreate(&lt_), "cublasLtCreate");
  // A fixed workspace: nothing is allocated while a graph is being captured.
  workspace_.resize(kWorkspaceBytes);
  check(cublasSetWorkspace(blas_, workspace_.get(), workspace_.bytes()), "cublasSetWorkspace");
}

Gemm::~Gemm() {
  for (auto& [k, p] : plans_) {
    if (p.op) cublasLtMatmulDescDestroy(p.op);
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  }
  cublasLtDestroy(lt_);
  cublasDestroy(blas_);
}

Gemm::Plan& Gemm::plan(const Key& k, const bf16_t* x, const bf16_t* w, cudaStream_t s) {
  if (auto it = plans_.find(k); it != plans_.end()) return it->second;
  const auto [n, in, out, y_type_int, accumulate] = k;
  const auto y_type = cudaDataType(y_type_int);
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  check(cudaStreamIsCapturing(s, &capturing), "cudaStreamIsCapturing");
  Plan p;
  // W is [out, in] row-major = (in x out) column-major, used transposed; x likewise (in x n);
  // y is (out x n) column-major = [n, out] row-major.
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  bool ok =
      cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, uint64_t(in), uint64_t(out), in) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, uint64_t(in), uint64_t(n), in) ==
          CUBLAS_STATUS_SUCCESS &&
      cublasLtMatrixLayoutCreate(&p.c, y_type, uint64_t(out), uint64_t(n), out) ==
          CUBLAS_STATUS_SUCCESS;
  std::vector<cublasLtMatmulHeuristicResult_t> cand(8);
  int found = 0;
  if (ok) {
    cublasLtMatmulPreference_t pref = nullptr;
    ok = cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS;
    const size_t ws = kWorkspaceBytes;
    ok = ok && cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &ws, sizeof(ws)) == CUBLAS_STATUS_SUCCESS;
    ok = ok &&
         cublasLtMatmulAlgoGetHeuristic(lt_, p.op, p.a, p.b, p.c, p.c, pref, int(cand.size()),
                                        cand.data(), &found) == CUBLAS_STATUS_SUCCESS &&
         found > 0;
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
  }
  if (ok) {
    p.lt = true;
    p.algo = cand[0].algo;
    if (capturing == cudaStreamCaptureStatusNone && found > 1) {
      // Time each candidate on a scratch output (the real y may be accumulated into).
      DeviceBuffer<uint8_t> scratch(size_t(n * out) * (y_type == CUDA_R_32F ? 4 : 2));
      cudaEvent_t e0, e1;
      check(cudaEventCreate(&e0), "cudaEventCreate");
      check(cudaEventCreate(&e1), "cudaEventCreate");
      const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
      float best = 1e30f;
      bool any = false;
      for (int i = 0; i < found; ++i) {
        const auto call = [&] {
          return cublasLtMatmul(lt_, p.op, &alpha, w, p.a, x, p.b, &beta, scratch.get(), p.c,
                                scratch.get(), p.c, &cand[size_t(i)].algo, workspace_.get(),
                                kWorkspaceBytes, s);
        };
        if (call() != CUBLAS_STATUS_SUCCESS) continue;  // warm-up, and a check that it runs
        check(cudaEventRecord(e0, s), "cudaEventRecord");
        for (int r = 0; r < 3; ++r) call();
        check(cudaEventRecord(e1, s), "cudaEventRecord");
        check(cudaEventSynchronize(e1), "cudaEventSynchronize");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
        any = true;
        if (ms < best) {
          best = ms;
          p.algo = cand[size_t(i)].algo;
        }
      }
      cudaEventDestroy(e0);
      cudaEventDestroy(e1);
      check(cudaStreamSynchronize(s), "gemm autotune");
      cudaGetLastError();  // a declined candidate leaves no sticky error behind
      p.lt = any;
    }
  }
  return plans_.emplace(k, p).first->second;
}

void Gemm::run(const bf16_t* x, int64_t n, int64_t in, const bf16_t* w, int64_t out, void* y,
               cudaDataType y_type, bool accumulate, cudaStream_t s) {
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  Plan& p = plan(Key{n, in, out, int(y_type), accumulate}, x, w, s);
  if (p.lt) {
    check(cublasLtMatmul(lt_, p.op, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &p.algo,
                         workspace_.get(), kWorkspaceBytes, s),
          "cublasLtMatmul");
    return;
  }
  check(cublasSetStream(blas_, s), "cublasSetStream");
  check(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, int(out), int(n), int(in), &alpha, w,
                     CUDA_R_16BF, int(in), x, CUDA_R_16BF, int(in), &beta, y, y_type, int(out),
                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
}

}  // namespace ep::cuda
