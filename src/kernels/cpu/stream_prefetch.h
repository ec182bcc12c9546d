// Software prefetch for the decode (matrix-vector) kernels, which read every weight once per token.
//
// Lines are requested 16 KiB ahead of the kernel into L2 (prefetcht2). Measured on the Zen 5 edge
// VM (2 threads, 1 GiB matrices, kernels alternated in one process, huge and 4 KiB pages alike):
// Q8_0 44.5 -> 50.8 GB/s, Q4_0 41 -> 46-49, F16 43.4 -> 45.8 against the earlier 2-4 KiB ahead
// into L1 (prefetcht0), whose requests hold L1 miss buffers for the whole memory latency. No
// software prefetch at all streams about as fast as this on that CPU; the prefetch stays for
// hardware prefetchers that stop at 4 KiB page boundaries.
#pragma once

#include "core/matrix_view.h"

#include <algorithm>
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

// For the prefill GEMMs, which read each weight once per product while packing a slice: the
// bytes [begin, end) of rows [r0, r0 + nr) of w into L2, requested one slice ahead so that the
// packing does not wait on memory.
inline void prefetch_rows(const MatrixView& w, int64_t r0, int64_t nr, int64_t begin, int64_t end) {
  end = std::min(end, w.row_bytes());
  for (int64_t r = r0; r < r0 + nr; ++r) {
    const char* row = static_cast<const char*>(w.row(r));
    for (int64_t off = begin; off < end; off += 64) _mm_prefetch(row + off, _MM_HINT_T1);
  }
}

}  // namespace ep::kernels::detail
