#include "runtime/paged_sequence_kv.h"

#include <algorithm>

namespace ep {

void PagedSequenceKv::write(int64_t layer, int64_t first, int64_t n, const float* k,
                            const float* v) {
  const int64_t bs = pool_.block_size(), row = pool_.row();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = first + i;
    const int32_t block = blocks_[size_t(p / bs)];
    std::copy_n(k + i * row, row, pool_.k(block, layer, p % bs));
    std::copy_n(v + i * row, row, pool_.v(block, layer, p % bs));
  }
}

std::pair<const float*, const float*> PagedSequenceKv::view(int64_t layer, int64_t n) {
  const int64_t bs = pool_.block_size(), row = pool_.row();
  k_.resize(size_t(n * row));
  v_.resize(size_t(n * row));
  for (int64_t p = 0; p < n; p += bs) {
    const int64_t len = std::min(bs, n - p);
    const int32_t block = blocks_[size_t(p / bs)];
    std::copy_n(pool_.k(block, layer, 0), len * row, &k_[size_t(p * row)]);
    std::copy_n(pool_.v(block, layer, 0), len * row, &v_[size_t(p * row)]);
  }
  return {k_.data(), v_.data()};
}

}  // namespace ep
