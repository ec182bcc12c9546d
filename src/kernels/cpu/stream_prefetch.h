// Software prefetch for the decode (matrix-vector) kernels, which read every weight once per token.
//
// Lines are requested 16 KiB ahead of the kernel into L2 (prefetcht2). Measured on the Zen 5 edge
// VM (2 threads, 1 GiB matrices, kernels alternated in one process, huge and 4 KiB pages alike):
// Q8_0 44.5 -> 50.8 GB/s, Q4_0 41 -> 46-49, F16 43.4 -> 45.8 against the earlier 2-4 KiB ahead
// into L1 (prefetcht0), whose requests hold L1 miss buffers for the whole memory latency. No
// software prefetch at all streams about as fast as this on that CPU; the prefetch stays for
// hardware prefetchers that stop at 4 KiB page boundaries.
#pragma once

#include <cstdint>

#include <immintrin.h>

namespace ep::kernels::detail {

constexpr int64_t kStreamPrefetchBytes = 16384;

// Prefetches the lines of [p, p + bytes) shifted kStreamPrefetchBytes ahead (past the end of a
// mapping is harmless: prefetches never fault).
inline void prefetch_stream(const void* p, int64_t bytes) {
  const char* c = static_cast<const char*>(p) + kStreamPrefetchBytes;
  for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T2);
}

}  // namespace ep::kernels::detail
