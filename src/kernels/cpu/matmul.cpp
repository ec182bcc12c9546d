#include "kernels/cpu/matmul.h"

#include "core/quant.h"

#include <algorithm>
#include <vector>

namespace ep::kernels {

float dot_f32(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] += a[i] * b[i];
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0];
}

void matmul(const MatrixView& w, const float* x, int64_t n_rows, float* y, ThreadPool& pool) {
  // Work unit: a block of weight rows. Each block is expanded to f32 once and then used against
  // every activation row, so quantised weights are decoded once per call.
  constexpr int64_t kBlockRows = 16;
  const int64_t n_blocks = (w.rows + kBlockRows - 1) / kBlockRows;
  pool.parallel_for(n_blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> expanded;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * kBlockRows;
      const int64_t r1 = std::min(w.rows, r0 + kBlockRows);
      const float* rows = nullptr;
      if (w.type == DType::F32) {
        rows = static_cast<const float*>(w.row(r0));
      } else {
        expanded.resize(size_t((r1 - r0) * w.cols));
        for (int64_t r = r0; r < r1; ++r) {
          dequantize_row(w.type, w.row(r), expanded.data() + (r - r0) * w.cols, w.cols);
        }
        rows = expanded.data();
      }
      for (int64_t t = 0; t < n_rows; ++t) {
        const float* xt = x + t * w.cols;
        float* yt = y + t * w.rows;
        for (int64_t r = r0; r < r1; ++r) yt[r] = dot_f32(rows + (r - r0) * w.cols, xt, w.cols);
      }
    }
  });
}

}  // namespace ep::kernels
