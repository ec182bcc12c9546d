// Each CUDA kernel against a float64 reference on the CPU, on fresh random inputs, with its
// output poisoned (NaN) before the launch so that unwritten elements fail the check.
#include "cuda_test_util.h"

#ifdef EP_HAVE_CUDA
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/kernels.h"
#include "core/half.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace ep::cuda {
namespace {

using test::rel_l2;

std::mt19937_64& rng() {
  static thread_local std::mt19937_64 r(std::random_device{}());
  return r;
}

// Rounds to bf16 in place and returns the bits.
std::vector<bf16_t> to_bf16(std::vector<float>& v) {
  std::vector<bf16_t> b(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    b[i] = f32_to_bf16(v[i]);
    v[i] = bf16_to_f32(b[i]);
  }
  return b;
}

template <typename T>
DeviceBuffer<T> upload(const std::vector<T>& v) {
  DeviceBuffer<T> d(v.size());
  check(cudaMemcpy(d.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return d;
}

template <typename T>
std::vector<T> download(const DeviceBuffer<T>& d) {
  check(cudaDeviceSynchronize(), "kernel");
  std::vector<T> v(d.size());
  check(cudaMemcpy(v.data(), d.get(), d.bytes(), cudaMemcpyDeviceToHost), "download");
  return v;
}

DeviceBuffer<float> poisoned_f32(size_t n) {
  std::vector<float> nan(n, std::numeric_limits<float>::quiet_NaN());
  return upload(nan);
}
DeviceBuffer<bf16_t> poisoned_bf16(size_t n) {
  return upload(std::vector<bf16_t>(n, 0x7fc0));
}

std::vector<double> widen(const std::vector<bf16_t>& v) {
  std::vector<double> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) d[i] = bf16_to_f32(v[i]);
  return d;
}
std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

TEST(CudaKernels, RmsNorm) {
  EP_REQUIRE_CUDA_DEVICE();
  const int n = 5, d = 4104;
  auto x = test::random_floats(size_t(n * d), rng(), 3.0f);
  auto w = test::random_floats(size_t(d), rng());
  auto dx = upload(x), dw = upload(w);
  auto out = poisoned_bf16(size_t(n * d));
  rmsnorm(dx.get(), dw.get(), n, d, 1e-5f, out.get(), nullptr);
  std::vector<double> ref(size_t(n * d));
  for (int i = 0; i < n; ++i) {
    double ss = 0;
    for (int j = 0; j < d; ++j) ss += double(x[size_t(i * d + j)]) * x[size_t(i * d + j)];
    const double inv = 1.0 / std::sqrt(ss / d + 1e-5);
    for (int j = 0; j < d; ++j) ref[size_t(i * d + j)] = x[size_t(i * d + j)] * inv * w[size_t(j)];
  }
  EXPECT_LT(rel_l2(widen(download(out)), ref), 5e-3);
}

TEST(CudaKernels, GemvAllOutputModes) {
  EP_REQUIRE_CUDA_DEVICE();
  for (const auto& [rows, cols] :
       {std::pair{257, 4096}, std::pair{64, 8 * 37}, std::pair{3, 11008}, std::pair{514, 4096}}) {
    auto w = test::random_floats(size_t(rows) * cols, rng());
    auto x = test::random_floats(size_t(cols), rng());
    const auto wb = to_bf16(w), xb = to_bf16(x);
    auto y0 = test::random_floats(size_t(rows), rng());
    std::vector<double> ref(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) {
      double s = 0;
      for (int c = 0; c < cols; ++c) s += double(w[size_t(r) * cols + c]) * x[size_t(c)];
      ref[size_t(r)] = s;
    }
    auto dw = upload(wb), dx = upload(xb);
    auto y = poisoned_f32(static_cast<size_t>(rows));
    gemv(dw.get(), dx.get(), rows, cols, y.get(), GemvOut::F32, nullptr);
    EXPECT_LT(rel_l2(widen(download(y)), ref), 1e-5) << rows << "x" << cols;
    auto ya = upload(y0);
    gemv(dw.get(), dx.get(), rows, cols, ya.get(), GemvOut::F32Add, nullptr);
    std::vector<double> ref_add(ref);
    for (int r = 0; r < rows; ++r) ref_add[size_t(r)] += y0[size_t(r)];
    EXPECT_LT(rel_l2(widen(download(ya)), ref_add), 1e-5);
    auto yb = poisoned_bf16(static_cast<size_t>(rows));
    gemv(dw.get(), dx.get(), rows, cols, yb.get(), GemvOut::BF16, nullptr);
    EXPECT_LT(rel_l2(widen(download(yb)), ref), 5e-3);
    if (rows % 2 == 0) {
      // SwiGLU: the first half of the rows are gates, the second half their up rows.
      const int half = rows / 2;
      std::vector<double> ref_sw(static_cast<size_t>(half));
      for (int r = 0; r < half; ++r) {
        const double g = ref[size_t(r)], u = ref[size_t(half + r)];
        ref_sw[size_t(r)] = g / (1 + std::exp(-g)) * u;
      }
      auto ys = poisoned_bf16(static_cast<size_t>(half));
      gemv(dw.get(), dx.get(), half, cols, ys.get(), GemvOut::SwiGLU, nullptr);
      EXPECT_LT(rel_l2(widen(download(ys)), ref_sw), 5e-3) << rows << "x" << cols;
    }
  }
}

TEST(CudaKernels, QkvRopeBothLayoutsWithBias) {
  EP_REQUIRE_CUDA_DEVICE();
  for (const bool adjacent : {false, true}) {
    const int n = 7, nh = 4, nkv = 2, hd = 64, half = hd / 2;
    const int q_dim = nh * hd, kv_dim = nkv * hd, width = q_dim + 2 * kv_dim;
    const int n_slots = 3 * kPageTokens;
    auto qkv = test::random_floats(size_t(n * width), rng());
    auto bias = test::random_floats(size_t(width), rng(), 0.1f);
    std::vector<int32_t> pos(n), slot(n);
    std::vector<double> inv(half);
    for (int i = 0; i < half; ++i) inv[size_t(i)] = std::pow(10000.0, -2.0 * i / hd);
    std::vector<int32_t> all(n_slots);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng());
    for (int t = 0; t < n; ++t) {
      pos[size_t(t)] = int32_t(rng()() % 5000);
      slot[size_t(t)] = all[size_t(t)];
    }
    auto dqkv = upload(qkv), dbias = upload(bias);
    auto dpos = upload(pos), dslot = upload(slot);
    auto dinv = upload(inv);
    auto q = poisoned_bf16(size_t(n * q_dim));
    auto kc = poisoned_bf16(size_t(n_slots * kv_dim)), vc = poisoned_bf16(size_t(n_slots * kv_dim));
    QkvRope a;
    a.qkv = dqkv.get();
    a.bias = dbias.get();
    a.pos = dpos.get();
    a.slot = dslot.get();
    a.inv_freq = dinv.get();
    a.adjacent_pairs = adjacent;
    a.n = n;
    a.n_head = nh;
    a.n_head_kv = nkv;
    a.head_dim = hd;
    a.q = q.get();
    a.k_cache = kc.get();
    a.v_cache = vc.get();
    qkv_rope(a, nullptr);
    const auto qo = widen(download(q)), ko = widen(download(kc)), vo = widen(download(vc));
    std::vector<double> q_ref, q_got, k_ref, k_got, v_ref, v_got;
    for (int t = 0; t < n; ++t) {
      for (int h = 0; h < nh + nkv; ++h) {
        for (int i = 0; i < half; ++i) {
          const int ia = adjacent ? 2 * i : i, ib = adjacent ? 2 * i + 1 : i + half;
          const double x0 =
              double(qkv[size_t(t * width + h * hd + ia)]) + bias[size_t(h * hd + ia)];
          const double x1 =
              double(qkv[size_t(t * width + h * hd + ib)]) + bias[size_t(h * hd + ib)];
          const double ang = pos[size_t(t)] * inv[size_t(i)];
          const double y0 = x0 * std::cos(ang) - x1 * std::sin(ang);
          const double y1 = x0 * std::sin(ang) + x1 * std::cos(ang);
          if (h < nh) {
            q_ref.insert(q_ref.end(), {y0, y1});
            q_got.insert(q_got.end(), {qo[size_t(t * q_dim + h * hd + ia)],
                                       qo[size_t(t * q_dim + h * hd + ib)]});
          } else {
            const size_t base = size_t(slot[size_t(t)]) * kv_dim + size_t(h - nh) * hd;
            k_ref.insert(k_ref.end(), {y0, y1});
            k_got.insert(k_got.end(), {ko[base + size_t(ia)], ko[base + size_t(ib)]});
          }
        }
      }
      for (int j = 0; j < kv_dim; ++j) {
        v_ref.push_back(double(qkv[size_t(t * width + q_dim + kv_dim + j)]) +
                        bias[size_t(q_dim + kv_dim + j)]);
        v_got.push_back(vo[size_t(slot[size_t(t)]) * kv_dim + size_t(j)]);
      }
    }
    EXPECT_LT(rel_l2(q_got, q_ref), 5e-3) << "adjacent " << adjacent;
    EXPECT_LT(rel_l2(k_got, k_ref), 5e-3);
    EXPECT_LT(rel_l2(v_got, v_ref), 5e-3);
  }
}

TEST(CudaKernels, SwigluAndArgmax) {
  EP_REQUIRE_CUDA_DEVICE();
  const int n = 3, ff = 1000;
  auto gu = test::random_floats(size_t(n * 2 * ff), rng(), 2.0f);
  const auto gub = to_bf16(gu);
  auto dgu = upload(gub);
  auto out = poisoned_bf16(size_t(n * ff));
  swiglu(dgu.get(), n, ff, out.get(), nullptr);
  std::vector<double> ref;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < ff; ++j) {
      const double g = gu[size_t(i * 2 * ff + j)], u = gu[size_t(i * 2 * ff + ff + j)];
      ref.push_back(g / (1 + std::exp(-g)) * u);
    }
  }
  EXPECT_LT(rel_l2(widen(download(out)), ref), 5e-3);

  const int vocab = 32000;
  auto logits = test::random_floats(size_t(n * vocab), rng());
  auto dl = upload(logits);
  DeviceBuffer<int32_t> best(static_cast<size_t>(n));
  argmax_rows(dl.get(), n, vocab, best.get(), nullptr);
  const auto got = download(best);
  for (int i = 0; i < n; ++i) {
    const auto row = logits.begin() + i * vocab;
    EXPECT_EQ(got[size_t(i)], std::max_element(row, row + vocab) - row);
  }
}

// A paged layer of random keys and values for `n_seqs` sequences of `n_kv` keys, pages in a
// shuffled order; the reference reads them back through the same table.
struct PagedFixture {
  int n_seqs, n_kv, n_head_kv, hd, pages_per_seq;
  std::vector<float> k, v;     // [n_pages * kPageTokens, n_head_kv * hd], bf16-rounded
  std::vector<int32_t> table;  // [n_seqs, pages_per_seq]
  DeviceBuffer<bf16_t> dk, dv;
  DeviceBuffer<int32_t> dtable;

  PagedFixture(int seqs, int kv, int nkv, int head_dim)
      : n_seqs(seqs),
        n_kv(kv),
        n_head_kv(nkv),
        hd(head_dim),
        pages_per_seq((kv + kPageTokens - 1) / kPageTokens) {
    const int n_pages = n_seqs * pages_per_seq;
    k = test::random_floats(size_t(n_pages) * kPageTokens * nkv * hd, rng());
    v = test::random_floats(k.size(), rng());
    dk = upload(to_bf16(k));
    dv = upload(to_bf16(v));
    table.resize(static_cast<size_t>(n_pages));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng());
    dtable = upload(table);
  }
  const float* key(int seq, int j, int kvh) const {
    const size_t row = size_t(table[size_t(seq * pages_per_seq + j / kPageTokens)]) * kPageTokens +
                       size_t(j % kPageTokens);
    return k.data() + row * size_t(n_head_kv * hd) + size_t(kvh * hd);
  }
  const float* value(int seq, int j, int kvh) const {
    return v.data() + (key(seq, j, kvh) - k.data());
  }
};

// Float64 attention of one query over keys [lo, hi) of a sequence; returns lse.
double reference_row(const PagedFixture& f, int seq, const float* q, int kvh, double scale, int lo,
                     int hi, double* out) {
  std::vector<double> s;
  double mx = -INFINITY;
  for (int j = lo; j < hi; ++j) {
    double d = 0;
    for (int i = 0; i < f.hd; ++i) d += double(q[i]) * f.key(seq, j, kvh)[i];
    s.push_back(d * scale);
    mx = std::max(mx, s.back());
  }
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - mx));
  for (int i = 0; i < f.hd; ++i) {
    double o = 0;
    for (int j = lo; j < hi; ++j) o += s[size_t(j - lo)] * f.value(seq, j, kvh)[i];
    out[i] = hi > lo ? o / sum : 0.0;
  }
  return hi > lo ? mx + std::log(sum) : -INFINITY;
}

TEST(CudaKernels, FlashPrefillCausalGqaWindowLse) {
  EP_REQUIRE_CUDA_DEVICE();
  for (const int hd : {64, 128}) {
    for (const int window : {0, 37}) {
      const int n_head = 8, n_head_kv = 2, n_kv = 300, n_q = 130, q_pos0 = n_kv - n_q;
      PagedFixture f(1, n_kv, n_head_kv, hd);
      auto q = test::random_floats(size_t(n_q * n_head * hd), rng());
      auto dq = upload(to_bf16(q));
      auto out = poisoned_bf16(size_t(n_q * n_head * hd));
      auto lse = poisoned_f32(size_t(n_q * n_head));
      FlashPrefill a;
      a.q = dq.get();
      a.q_stride = n_head * hd;
      a.n_q = n_q;
      a.q_pos0 = q_pos0;
      a.kv = {f.dk.get(), f.dv.get()};
      a.table = f.dtable.get();
      a.n_kv = n_kv;
      a.n_head = n_head;
      a.n_head_kv = n_head_kv;
      a.head_dim = hd;
      a.scale = float(1.0 / std::sqrt(double(hd)));
      a.window = window;
      a.out = out.get();
      a.out_stride = n_head * hd;
      a.lse = lse.get();
      attention_flash(a, nullptr);
      std::vector<double> ref(size_t(n_q * n_head * hd)), ref_lse(size_t(n_q * n_head));
      for (int i = 0; i < n_q; ++i) {
        for (int h = 0; h < n_head; ++h) {
          const int p = q_pos0 + i;
          const int lo = window > 0 ? std::max(0, p - window + 1) : 0;
          ref_lse[size_t(i * n_head + h)] =
              reference_row(f, 0, q.data() + (i * n_head + h) * hd, h / (n_head / n_head_kv),
                            a.scale, lo, p + 1, ref.data() + (i * n_head + h) * hd);
        }
      }
      EXPECT_LT(rel_l2(widen(download(out)), ref), 1e-2) << "hd " << hd << " window " << window;
      EXPECT_LT(rel_l2(widen(download(lse)), ref_lse), 1e-3) << "hd " << hd << " window " << window;
    }
  }
}

// Decode rows: different sequences and lengths per row, split into key ranges and merged.
TEST(CudaKernels, RowAttentionSplitsAndMerge) {
  EP_REQUIRE_CUDA_DEVICE();
  for (const int hd : {16, 32, 64, 128}) {
    for (const int n_split : {1, 3, 8}) {
      const int n_head = 4, n_head_kv = 2, n_seqs = 3, n_kv = 200, rows = 5;
      PagedFixture f(n_seqs, n_kv, n_head_kv, hd);
      auto q = test::random_floats(size_t(rows * n_head * hd), rng());
      auto dq = upload(to_bf16(q));
      std::vector<int32_t> seq(rows), nkv(rows), pos(rows);
      for (int r = 0; r < rows; ++r) {
        seq[size_t(r)] = r % n_seqs;
        nkv[size_t(r)] = 1 + int(rng()() % n_kv);
        pos[size_t(r)] = nkv[size_t(r)] - 1;
      }
      auto dseq = upload(seq), dnkv = upload(nkv), dpos = upload(pos);
      auto part = poisoned_f32(size_t(rows * n_head * n_split * hd));
      auto part_lse = poisoned_f32(size_t(rows * n_head * n_split));
      RowAttention a;
      a.q = dq.get();
      a.q_stride = n_head * hd;
      a.n_rows = rows;
      a.row_pos = dpos.get();
      a.row_seq = dseq.get();
      a.row_nkv = dnkv.get();
      a.kv = {f.dk.get(), f.dv.get()};
      a.table = f.dtable.get();
      a.table_stride = f.pages_per_seq;
      a.n_head = n_head;
      a.n_head_kv = n_head_kv;
      a.head_dim = hd;
      a.scale = float(1.0 / std::sqrt(double(hd)));
      a.n_split = n_split;
      a.part_out = part.get();
      a.part_lse = part_lse.get();
      attention_rows(a, nullptr);
      auto out = poisoned_bf16(size_t(rows * n_head * hd));
      auto lse = poisoned_f32(size_t(rows * n_head));
      merge_partials(part.get(), part_lse.get(), rows, n_head, n_split, hd, out.get(), n_head * hd,
                     lse.get(), nullptr);
      std::vector<double> ref(size_t(rows * n_head * hd)), ref_lse(size_t(rows * n_head));
      for (int r = 0; r < rows; ++r) {
        for (int h = 0; h < n_head; ++h) {
          ref_lse[size_t(r * n_head + h)] =
              reference_row(f, seq[size_t(r)], q.data() + (r * n_head + h) * hd, h / 2, a.scale, 0,
                            nkv[size_t(r)], ref.data() + (r * n_head + h) * hd);
        }
      }
      EXPECT_LT(rel_l2(widen(download(out)), ref), 1e-2) << "hd " << hd << " splits " << n_split;
      EXPECT_LT(rel_l2(widen(download(lse)), ref_lse), 1e-4)
          << "hd " << hd << " splits " << n_split;
    }
  }
}

// The cloud/edge split on the GPU: attention over a prefix segment (k_pos0 = 0) and over the
// sequence's own keys (k_pos0 = prefix length), merged through the log-sum-exps, equals attention
// over all keys at once.
TEST(CudaKernels, SplitSegmentsMergeToMonolithic) {
  EP_REQUIRE_CUDA_DEVICE();
  const int hd = 128, n_head = 4, n_head_kv = 4, n_kv = 333, split_at = 150, rows = 6;
  PagedFixture all(1, n_kv, n_head_kv, hd);
  // The same keys as two segments: the first split_at, and the rest (a table shifted by pages
  // cannot express an unaligned split, so the second segment gets its own pages).
  PagedFixture tail(1, n_kv - split_at, n_head_kv, hd);
  for (int j = 0; j < n_kv - split_at; ++j) {
    for (int h = 0; h < n_head_kv; ++h) {
      std::copy_n(all.key(0, split_at + j, h), hd, const_cast<float*>(tail.key(0, j, h)));
      std::copy_n(all.value(0, split_at + j, h), hd, const_cast<float*>(tail.value(0, j, h)));
    }
  }
  std::vector<float> tk = tail.k, tv = tail.v;
  tail.dk = upload(to_bf16(tk));
  tail.dv = upload(to_bf16(tv));
  auto q = test::random_floats(size_t(rows * n_head * hd), rng());
  auto dq = upload(to_bf16(q));
  std::vector<int32_t> pos(rows), nkv_all(rows, n_kv), nkv_head(rows, split_at),
      nkv_tail(rows, n_kv - split_at), zero(rows, 0);
  for (int r = 0; r < rows; ++r) pos[size_t(r)] = n_kv - rows + r;
  auto dpos = upload(pos), dall = upload(nkv_all), dhead = upload(nkv_head),
       dtail = upload(nkv_tail), dzero = upload(zero);
  const auto run = [&](const PagedFixture& f, const DeviceBuffer<int32_t>& nkv, int k_pos0) {
    auto part = poisoned_f32(size_t(rows * n_head * hd));
    auto part_lse = poisoned_f32(size_t(rows * n_head));
    RowAttention a;
    a.q = dq.get();
    a.q_stride = n_head * hd;
    a.n_rows = rows;
    a.row_pos = dpos.get();
    a.row_seq = dzero.get();
    a.row_nkv = nkv.get();
    a.kv = {f.dk.get(), f.dv.get()};
    a.table = f.dtable.get();
    a.table_stride = f.pages_per_seq;
    a.k_pos0 = k_pos0;
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = hd;
    a.scale = float(1.0 / std::sqrt(double(hd)));
    a.part_out = part.get();
    a.part_lse = part_lse.get();
    attention_rows(a, nullptr);
    return std::pair{download(part), download(part_lse)};
  };
  const auto [o_all, l_all] = run(all, dall, 0);
  const auto [o_head, l_head] = run(all, dhead, 0);
  const auto [o_tail, l_tail] = run(tail, dtail, split_at);
  // Interleave the two segments as two "splits" and merge them on the device.
  std::vector<float> parts(size_t(rows * n_head * 2 * hd)), lses(size_t(rows * n_head * 2));
  for (int rh = 0; rh < rows * n_head; ++rh) {
    std::copy_n(o_head.begin() + rh * hd, hd, parts.begin() + (rh * 2) * hd);
    std::copy_n(o_tail.begin() + rh * hd, hd, parts.begin() + (rh * 2 + 1) * hd);
    lses[size_t(rh * 2)] = l_head[size_t(rh)];
    lses[size_t(rh * 2 + 1)] = l_tail[size_t(rh)];
  }
  auto dparts = upload(parts), dlses = upload(lses);
  auto merged = poisoned_bf16(size_t(rows * n_head * hd));
  auto merged_lse = poisoned_f32(size_t(rows * n_head));
  merge_partials(dparts.get(), dlses.get(), rows, n_head, 2, hd, merged.get(), n_head * hd,
                 merged_lse.get(), nullptr);
  EXPECT_LT(rel_l2(widen(download(merged)), widen(o_all)), 5e-3);
  EXPECT_LT(rel_l2(widen(download(merged_lse)), widen(l_all)), 1e-5);
}

}  // namespace
}  // namespace ep::cuda

#else
TEST(CudaKernels, NotBuilt) {
  GTEST_SKIP() << "this build has no CUDA backend";
}
#endif
