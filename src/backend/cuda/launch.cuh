// Kernel launches with programmatic dependent launch (Hopper): a kernel may be scheduled while
// its predecessor in the stream is still finishing, which hides the launch gap between the many
// short kernels of a decode step. Every kernel launched this way starts with pdl_begin(), which
// waits for the predecessor to complete (and its writes to be visible) before any memory access
// (the GEMV reads constant weights before it: nothing in the stream writes them).
#pragma once

#include "backend/cuda/check.h"

#include <cuda_runtime.h>

namespace ep::cuda {

__device__ __forceinline__ void pdl_begin() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  // Only after the wait: at most two kernels of a stream are resident at a time.
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

template <typename... KArgs, typename... Args>
void launch(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem,
            cudaStream_t s, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  check(cudaLaunchKernelEx(&cfg, kernel, static_cast<KArgs>(args)...), name);
}

}  // namespace ep::cuda
