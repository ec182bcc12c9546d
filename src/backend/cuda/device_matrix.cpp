#include "backend/cuda/device_matrix.h"

#include "core/error.h"
#include "core/half.h"
#include "core/quant.h"

namespace ep::cuda {
namespace {

bool keeps_blocks(const MatrixView& m) {
  return device_quant_type(m.type) && m.cols % dtype_block_elems(m.type) == 0 && m.cols % 8 == 0;
}

void copy_in(DeviceMatrix& d, size_t offset, const void* src, size_t bytes) {
  check(cudaMemcpy(d.data.get() + offset, src, bytes, cudaMemcpyHostToDevice),
        "cudaMemcpy(weights)");
}

}  // namespace

DeviceMatrix bf16_matrix(int64_t rows, int64_t cols) {
  DeviceMatrix d;
  d.rows = rows;
  d.cols = cols;
  d.segments.push_back({DType::BF16, 0, rows, 0});
  d.data.resize(size_t(rows * cols) * sizeof(bf16_t));
  return d;
}

DeviceMatrix upload_matrix(std::initializer_list<const MatrixView*> parts, bool native) {
  int64_t rows = 0;
  const int64_t cols = (*parts.begin())->cols;
  bool all_blocks = native;
  for (const MatrixView* m : parts) {
    if (m->cols != cols) fail("CUDA backend: stacked matrices of {} and {} columns", cols, m->cols);
    rows += m->rows;
    all_blocks = all_blocks && keeps_blocks(*m);
  }
  if (!all_blocks) {
    // Widened and rounded to bf16 row by row.
    DeviceMatrix d = bf16_matrix(rows, cols);
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<bf16_t> host(size_t(rows * cols));
    int64_t r0 = 0;
    for (const MatrixView* m : parts) {
      for (int64_t r = 0; r < m->rows; ++r, ++r0) {
        dequantize_row(m->type, m->row(r), row.data(), cols);
        bf16_t* dst = host.data() + size_t(r0 * cols);
        for (int64_t c = 0; c < cols; ++c) dst[c] = f32_to_bf16(row[size_t(c)]);
      }
    }
    if (!host.empty()) copy_in(d, 0, host.data(), host.size() * sizeof(bf16_t));
    return d;
  }
  DeviceMatrix d;
  d.rows = rows;
  d.cols = cols;
  d.native = true;
  size_t bytes = 0;
  int64_t r0 = 0;
  for (const MatrixView* m : parts) {
    d.segments.push_back({m->type, r0, m->rows, bytes});
    r0 += m->rows;
    bytes += (size_t(m->rows * m->row_bytes()) + 15) / 16 * 16;  // segments 16-byte aligned
  }
  d.data.resize(bytes);
  size_t i = 0;
  for (const MatrixView* m : parts)
    copy_in(d, d.segments[i++].offset, m->data, size_t(m->rows * m->row_bytes()));
  return d;
}

}  // namespace ep::cuda
