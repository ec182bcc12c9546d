// A weight matrix on the device: bf16, or the GGUF blocks of the file kept as they are. A fused
// matrix (q|k|v, gate|up) is a stack of row segments, each in its own block type (a Q4_K_M file
// stores v and some down projections in Q6_K). The products read the blocks directly: the fused
// GEMV for up to kGemvMaxBatch rows, else a dequantisation into a bf16 scratch and the GEMM.
#pragma once

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kernels.h"
#include "core/matrix_view.h"

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace ep::cuda {

struct MatrixSegment {
  DType type = DType::BF16;
  int64_t row0 = 0, rows = 0;  // rows [row0, row0 + rows) of the matrix
  size_t offset = 0;           // byte offset of its blocks in DeviceMatrix::data
};

struct DeviceMatrix {
  int64_t rows = 0, cols = 0;
  bool native = false;  // false: data holds bf16 [rows, cols], one segment
  std::vector<MatrixSegment> segments;
  DeviceBuffer<uint8_t> data;

  const bf16_t* bf16() const { return reinterpret_cast<const bf16_t*>(data.get()); }
  bf16_t* bf16() { return reinterpret_cast<bf16_t*>(data.get()); }
  const void* segment_data(const MatrixSegment& s) const { return data.get() + s.offset; }
  size_t bytes() const { return data.bytes(); }
  // Elements of the bf16 scratch its batched product needs (0 for bf16 matrices).
  int64_t scratch_elems() const { return native ? rows * cols : 0; }
};

// The views stacked by rows (equal column counts). With `native`, a matrix whose every part is a
// type the device reads, with whole blocks per row, keeps its blocks; anything else (F32, F16,
// BF16 files) is expanded to bf16 on the host, as before.
DeviceMatrix upload_matrix(std::initializer_list<const MatrixView*> parts, bool native);
// An uninitialised bf16 matrix.
DeviceMatrix bf16_matrix(int64_t rows, int64_t cols);

// y [n, out] (= or +=) x [n, in] W^T for a native matrix with out = W.rows, in = W.cols: the fused
// GEMV per segment for n <= kGemvMaxBatch, else each segment dequantised into `scratch`
// (W.scratch_elems() bf16) and then `gemm(scratch)`. GemvOut::SwiGLU is not taken here.
template <typename Gemm>
void native_matmul(const DeviceMatrix& W, const bf16_t* x, int64_t n, void* y, GemvOut mode,
                   bf16_t* scratch, cudaStream_t s, Gemm&& gemm) {
  if (n <= kGemvMaxBatch) {
    for (const MatrixSegment& seg : W.segments) {
      QuantGemv g;
      g.type = seg.type;
      g.w = W.segment_data(seg);
      g.rows = int(seg.rows);
      g.cols = int(W.cols);
      g.x = x;
      g.n = int(n);
      g.y = y;
      g.ldy = W.rows;
      g.row0 = seg.row0;
      g.out = mode;
      gemv_quant(g, s);
    }
    return;
  }
  for (const MatrixSegment& seg : W.segments)
    dequantize_rows(seg.type, W.segment_data(seg), seg.rows, int(W.cols),
                    scratch + seg.row0 * W.cols, s);
  gemm(static_cast<const bf16_t*>(scratch));
}

}  // namespace ep::cuda
