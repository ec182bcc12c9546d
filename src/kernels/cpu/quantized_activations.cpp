// The nibble-ordered copy of quantised activations that the Q4_0 decode kernels read (see
// QuantizedActivations in matmul_kernels.h): a Q4_0 block stores elements 0-15 in the low nibbles
// and 16-31 in the high ones of the same 16 bytes, so the kernels unpack several blocks' low
// nibbles into one register and need the matching activations side by side.
#include "kernels/cpu/matmul_kernels.h"

#include <algorithm>

namespace ep::kernels::detail {

void order_q4_groups(QuantizedActivations& a) {
  const int64_t ng = a.n_blocks / 4;
  a.q4.resize(size_t(ng * 128));
  a.scale4.resize(size_t(ng * 16));
  a.corr4.resize(size_t(ng * 16));
  for (int64_t g = 0; g < ng; ++g) {
    for (int k = 0; k < 4; ++k) {
      const int64_t b = g * 4 + k;
      std::copy_n(&a.q[size_t(b * 32)], 16, &a.q4[size_t(g * 128 + k * 16)]);
      std::copy_n(&a.q[size_t(b * 32 + 16)], 16, &a.q4[size_t(g * 128 + 64 + k * 16)]);
      for (int l = 0; l < 4; ++l) {
        a.scale4[size_t(g * 16 + k * 4 + l)] = a.scale[size_t(b * 8)];
        a.corr4[size_t(g * 16 + k * 4 + l)] = l == 0 ? a.corr[size_t(b * 8)] : 0;
      }
    }
  }
}

}  // namespace ep::kernels::detail
