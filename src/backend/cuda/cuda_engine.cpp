#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/engine_backend.h"

#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_weights.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"
#include "core/half.h"
#include "core/token_list.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace ep::cuda {
namespace {

bool plugin_device_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    if (why) *why = e != cudaSuccess ? cudaGetErrorString(e) : "no CUDA device";
    cudaGetLastError();  // clear the sticky error of a failed query
    return false;
  }
  return true;
}

// Activations of one pass, [rows, width] each.
struct Activations {
  DeviceBuffer<float> x, qkv, logits, part_out, part_lse;
  DeviceBuffer<bf16_t> xn, q, attn, gu, h;
  DeviceBuffer<int32_t> meta;  // tokens | pos | slot | seq | nkv, n each
  DeviceBuffer<int32_t> greedy;
  int64_t rows = 0;
};

enum Meta { kTokens, kPos, kSlot, kSeq, kNkv, kMetaFields };

struct Sequence {
  bool open = false;
  int64_t len = 0;
  std::vector<int32_t> pages;
};

struct Graph {
  cudaGraphExec_t exec = nullptr;
};

struct EngineImpl {
  DeviceWeights w;
  const HParams& hp;
  EngineOptions opt;
  int64_t d, hd, q_dim, kv_dim, qkv_dim, ff;
  int n_sm = 0;
  std::string name;

  Gemm gemm;
  cudaStream_t stream = nullptr, copy_stream = nullptr;
  cudaEvent_t t0 = nullptr, t1 = nullptr;
  std::vector<cudaEvent_t> kv_ready, kv_copied;  // per layer, for the observer
  double last_s = 0;

  // Paged KV cache: [layer][page][kPageTokens][kv_dim] for keys and for values.
  int64_t pages_per_seq = 0, n_pages = 0;
  DeviceBuffer<bf16_t> k_cache, v_cache;
  std::vector<int32_t> free_pages;
  std::vector<Sequence> seqs;
  PinnedBuffer<int32_t> table_host;
  DeviceBuffer<int32_t> table_dev;
  bool table_dirty = true;

  Activations pre, dec;  // prefill (grows) and decode (fixed: captured graphs point into it)
  PinnedBuffer<int32_t> meta_host;
  PinnedBuffer<float> logits_host;
  PinnedBuffer<int32_t> greedy_host;
  PinnedBuffer<bf16_t> kv_host;
  std::map<int, Graph> graphs;  // decode step per batch size

  // Stage profile of prefill (EngineOptions::profile): an event after each stage.
  bool profile_prefill = false, profiling = false;
  std::vector<std::pair<const char*, cudaEvent_t>> marks;
  std::vector<std::pair<std::string, double>> profile;

  void mark(const char* stage) {
    if (!profiling) return;
    cudaEvent_t e = nullptr;
    check(cudaEventCreate(&e), "cudaEventCreate");
    check(cudaEventRecord(e, stream), "cudaEventRecord");
    marks.emplace_back(stage, e);
  }

  // Sums the time between consecutive marks per stage (after the stream has finished).
  void collect_profile() {
    profile.clear();
    cudaEvent_t prev = t0;
    for (const auto& [stage, e] : marks) {
      float ms = 0;
      check(cudaEventElapsedTime(&ms, prev, e), "cudaEventElapsedTime");
      auto it = std::find_if(profile.begin(), profile.end(),
                             [&](const auto& p) { return p.first == stage; });
      if (it == profile.end()) it = profile.insert(profile.end(), {stage, 0.0});
      it->second += ms / 1e3;
      prev = e;
    }
    for (const auto& m : marks) cudaEventDestroy(m.second);
    marks.clear();
  }

  EngineImpl(DeviceWeights weights, EngineOptions o) : w(std::move(weights)), hp(w.hp), opt(o) {
    d = hp.n_embd;
    hd = hp.head_dim;
    q_dim = hp.n_head * hd;
    kv_dim = hp.n_head_kv * hd;
    qkv_dim = q_dim + 2 * kv_dim;
    ff = hp.n_ff;
    if (!rows_supported(int(hd)))
      fail("CUDA backend: head_dim {} is not supported (16, 32, 64, 128)", hd);
    if (d % 8 || q_dim % 8 || ff % 8) fail("CUDA backend: widths must be multiples of 8");
    if (opt.max_seqs < 1 || opt.max_ctx < 1)
      fail("CUDA backend: max_seqs and max_ctx must be positive");
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    n_sm = prop.multiProcessorCount;
    name = prop.name;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreate(&t0), "cudaEventCreate");
    check(cudaEventCreate(&t1), "cudaEventCreate");
    kv_ready.resize(size_t(hp.n_layer));
    kv_copied.resize(size_t(hp.n_layer));
    for (int64_t l = 0; l < hp.n_layer; ++l) {
      check(cudaEventCreateWithFlags(&kv_ready[size_t(l)], cudaEventDisableTiming),
            "cudaEventCreate");
      check(cudaEventCreateWithFlags(&kv_copied[size_t(l)], cudaEventDisableTiming),
            "cudaEventCreate");
    }

    pages_per_seq = (opt.max_ctx + kPageTokens - 1) / kPageTokens;
    n_pages = pages_per_seq * opt.max_seqs;
    const size_t cache_elems = size_t(hp.n_layer * n_pages * kPageTokens * kv_dim);
    k_cache.resize(cache_elems);
    v_cache.resize(cache_elems);
    for (int64_t p = n_pages - 1; p >= 0; --p) free_pages.push_back(int32_t(p));
    seqs.resize(size_t(opt.max_seqs));
    table_host.reserve(size_t(n_pages));
    std::fill(table_host.get(), table_host.get() + n_pages, 0);
    table_dev.resize(size_t(n_pages));
    size_rows(dec, opt.max_seqs, true);
    greedy_host.reserve(size_t(opt.max_seqs));
    meta_host.reserve(size_t(kMetaFields * opt.max_seqs));
  }

  ~EngineImpl() {
    for (auto& [b, g] : graphs) cudaGraphExecDestroy(g.exec);
    for (auto e : kv_ready) cudaEventDestroy(e);
    for (auto e : kv_copied) cudaEventDestroy(e);
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaStreamDestroy(copy_stream);
    cudaStreamDestroy(stream);
  }

  // Splits of the decode attention: enough (sequence, head, split) blocks to fill the chip.
  int decode_splits(int64_t b) const {
    const int64_t want = (4 * int64_t(n_sm) + b * hp.n_head - 1) / (b * hp.n_head);
    return int(std::clamp<int64_t>(want, 1, 32));
  }

  void size_rows(Activations& a, int64_t n, bool decode) {
    if (n <= a.rows) return;
    a.x.resize(size_t(n * d));
    a.xn.resize(size_t(n * d));
    a.qkv.resize(size_t(n * qkv_dim));
    a.q.resize(size_t(n * q_dim));
    a.attn.resize(size_t(n * q_dim));
    a.gu.resize(size_t(n * 2 * ff));
    a.h.resize(size_t(n * ff));
    a.meta.resize(size_t(kMetaFields * n));
    // Prefill needs logits for all rows only when asked; decode for every row.
    a.logits.reserve(size_t((decode ? n : 1) * hp.n_vocab));
    a.greedy.resize(size_t(n));
    const int splits = decode ? 32 : 1;
    a.part_out.resize(size_t(n * hp.n_head * splits * hd));
    a.part_lse.resize(size_t(n * hp.n_head * splits));
    a.rows = n;
  }

  // y [n, out] (= or +=) x [n, in] W^T; bf16 inputs, f32 accumulation.
  void matmul(const bf16_t* x, int64_t n, int64_t in, const bf16_t* wm, int64_t out, void* y,
              cudaDataType y_type, bool accumulate) {
    if (n == 1) {
      const GemvOut mode = y_type == CUDA_R_16BF ? GemvOut::BF16
                           : accumulate          ? GemvOut::F32Add
                                                 : GemvOut::F32;
      gemv(wm, x, int(out), int(in), y, mode, stream);
      return;
    }
    gemm.run(x, n, in, wm, out, y, y_type, accumulate, stream);
  }

  bf16_t* k_layer(int64_t l) const {
    return k_cache.get() + size_t(l * n_pages * kPageTokens * kv_dim);
  }
  bf16_t* v_layer(int64_t l) const {
    return v_cache.get() + size_t(l * n_pages * kPageTokens * kv_dim);
  }

  const Sequence& sequence(int seq) const {
    if (seq < 0 || seq >= int(seqs.size()) || !seqs[size_t(seq)].open)
      fail("CUDA engine: sequence {} is not open", seq);
    return seqs[size_t(seq)];
  }
  Sequence& sequence(int seq) {
    return const_cast<Sequence&>(static_cast<const EngineImpl&>(*this).sequence(seq));
  }

  // Makes room for `n` more tokens; returns the cache row of each.
  void reserve_tokens(int seq, int64_t n, int32_t* slots) {
    Sequence& s = sequence(seq);
    if (s.len + n > opt.max_ctx)
      fail("context full: {} tokens already, {} more would exceed the context of {}", s.len, n,
           opt.max_ctx);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = s.len + i;
      if (j / kPageTokens >= int64_t(s.pages.size())) {
        const int32_t page = free_pages.back();
        free_pages.pop_back();
        table_host.get()[seq * pages_per_seq + int64_t(s.pages.size())] = page;
        s.pages.push_back(page);
        table_dirty = true;
      }
      slots[i] = s.pages[size_t(j / kPageTokens)] * kPageTokens + int32_t(j % kPageTokens);
    }
  }

  void upload_table() {
    if (!table_dirty) return;
    check(cudaMemcpyAsync(table_dev.get(), table_host.get(), size_t(n_pages) * sizeof(int32_t),
                          cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync(page table)");
    table_dirty = false;
  }

  // The layer loop over activations `a` holding n rows whose meta is on the device. `attend`
  // fills a.attn from a.q for layer l.
  template <typename Attend, typename AfterKv>
  void layers(Activations& a, int64_t n, Attend&& attend, AfterKv&& after_kv) {
    const int32_t* meta = a.meta.get();
    mark("embed");
    for (int64_t l = 0; l < hp.n_layer; ++l) {
      const DeviceLayer& L = w.layers[size_t(l)];
      rmsnorm(a.x.get(), L.attn_norm.get(), int(n), int(d), hp.rms_norm_eps, a.xn.get(), stream);
      mark("rmsnorm");
      matmul(a.xn.get(), n, d, L.wqkv.get(), qkv_dim, a.qkv.get(), CUDA_R_32F, false);
      mark("gemm qkv");
      QkvRope r;
      r.qkv = a.qkv.get();
      r.bias = L.bqkv.size() ? L.bqkv.get() : nullptr;
      r.pos = meta + kPos * n;
      r.slot = meta + kSlot * n;
      r.inv_freq = w.inv_freq.get();
      r.adjacent_pairs = hp.rope_layout == RopeLayout::AdjacentPairs;
      r.n = int(n);
      r.n_head = int(hp.n_head);
      r.n_head_kv = int(hp.n_head_kv);
      r.head_dim = int(hd);
      r.q = a.q.get();
      r.k_cache = k_layer(l);
      r.v_cache = v_layer(l);
      qkv_rope(r, stream);
      after_kv(l);
      mark("bias+rope+kv append");
      attend(l);
      mark("attention");
      matmul(a.attn.get(), n, q_dim, L.wo.get(), d, a.x.get(), CUDA_R_32F, true);
      if (L.bo.size()) add_rows(a.x.get(), L.bo.get(), int(n), int(d), stream);
      mark("gemm o");
      rmsnorm(a.x.get(), L.ffn_norm.get(), int(n), int(d), hp.rms_norm_eps, a.xn.get(), stream);
      mark("rmsnorm");
      if (n == 1) {
        // Batch 1: the GEMV applies SwiGLU to each gate/up row pair itself (one kernel fewer).
        gemv(L.wgu.get(), a.xn.get(), int(ff), int(d), a.h.get(), GemvOut::SwiGLU, stream);
        mark("gemm gate+up");
      } else {
        matmul(a.xn.get(), n, d, L.wgu.get(), 2 * ff, a.gu.get(), CUDA_R_16BF, false);
        mark("gemm gate+up");
        swiglu(a.gu.get(), int(n), int(ff), a.h.get(), stream);
        mark("swiglu");
      }
      matmul(a.h.get(), n, ff, L.wdown.get(), d, a.x.get(), CUDA_R_32F, true);
      mark("gemm down");
    }
  }

  // Final norm and output head for `rows` rows starting at row `first` of a.x.
  void head(Activations& a, int64_t first, int64_t rows) {
    rmsnorm(a.x.get() + first * d, w.output_norm.get(), int(rows), int(d), hp.rms_norm_eps,
            a.xn.get(), stream);
    a.logits.reserve(size_t(rows * hp.n_vocab));
    matmul(a.xn.get(), rows, d, w.output.get(), hp.n_vocab, a.logits.get(), CUDA_R_32F, false);
    mark("output head");
  }

  RowAttention row_attention(Activations& a, int64_t n, int64_t l, int n_split) {
    RowAttention r;
    r.q = a.q.get();
    r.q_stride = q_dim;
    r.n_rows = int(n);
    r.row_pos = a.meta.get() + kPos * n;
    r.row_seq = a.meta.get() + kSeq * n;
    r.row_nkv = a.meta.get() + kNkv * n;
    r.kv = {k_layer(l), v_layer(l)};
    r.table = table_dev.get();
    r.table_stride = int(pages_per_seq);
    r.n_head = int(hp.n_head);
    r.n_head_kv = int(hp.n_head_kv);
    r.head_dim = int(hd);
    r.scale = float(1.0 / std::sqrt(double(hd)));
    r.window = int(hp.sliding_window);
    r.n_split = n_split;
    r.part_out = a.part_out.get();
    r.part_lse = a.part_lse.get();
    return r;
  }

  void prefill(int seq, std::span<const int32_t> tokens, std::vector<float>* logits,
               bool all_logits, const LayerSink& observer) {
    const auto n = int64_t(tokens.size());
    if (n == 0) fail("no tokens to process");
    if (n > 65535) fail("prefill: {} tokens in one call; at most 65535 (split the prompt)", n);
    check_token_ids(tokens, hp.n_vocab);
    Sequence& s = sequence(seq);
    const int64_t past = s.len;
    size_rows(pre, n, false);
    meta_host.reserve(size_t(kMetaFields * n));
    int32_t* m = meta_host.get();
    reserve_tokens(seq, n, m + kSlot * n);
    for (int64_t i = 0; i < n; ++i) {
      m[kTokens * n + i] = tokens[size_t(i)];
      m[kPos * n + i] = int32_t(past + i);
      m[kSeq * n + i] = seq;
      m[kNkv * n + i] = int32_t(past + n);
    }
    if (observer) kv_host.reserve(size_t(hp.n_layer * 2 * n * kv_dim));

    profiling = profile_prefill;
    check(cudaEventRecord(t0, stream), "cudaEventRecord");
    upload_table();
    check(cudaMemcpyAsync(pre.meta.get(), m, size_t(kMetaFields * n) * sizeof(int32_t),
                          cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync(meta)");
    embed_rows(w.tok_embd.get(), pre.meta.get(), int(n), int(d), pre.x.get(), stream);
    const float scale = float(1.0 / std::sqrt(double(hd)));
    const auto attend = [&](int64_t l) {
      if (flash_supported(int(hd))) {
        FlashPrefill f;
        f.q = pre.q.get();
        f.q_stride = q_dim;
        f.n_q = int(n);
        f.q_pos0 = int(past);
        f.kv = {k_layer(l), v_layer(l)};
        f.table = table_dev.get() + seq * pages_per_seq;
        f.n_kv = int(past + n);
        f.n_head = int(hp.n_head);
        f.n_head_kv = int(hp.n_head_kv);
        f.head_dim = int(hd);
        f.scale = scale;
        f.window = int(hp.sliding_window);
        f.out = pre.attn.get();
        f.out_stride = q_dim;
        attention_flash(f, stream);
      } else {
        attention_rows(row_attention(pre, n, l, 1), stream);
        merge_partials(pre.part_out.get(), pre.part_lse.get(), int(n), int(hp.n_head), 1, int(hd),
                       pre.attn.get(), q_dim, nullptr, stream);
      }
    };
    // Layer l's keys and values go to pinned host memory on the copy stream while layer l + 1
    // computes; the pages are never rewritten during this pass.
    const auto copy_out = [&](int64_t l) {
      if (!observer) return;
      check(cudaEventRecord(kv_ready[size_t(l)], stream), "cudaEventRecord");
      check(cudaStreamWaitEvent(copy_stream, kv_ready[size_t(l)]), "cudaStreamWaitEvent");
      for (int part = 0; part < 2; ++part) {
        const bf16_t* src = part == 0 ? k_layer(l) : v_layer(l);
        bf16_t* dst = kv_host.get() + size_t((l * 2 + part) * n * kv_dim);
        for (int64_t i = 0; i < n;) {
          int64_t j = i + 1;  // a run of consecutive cache rows: one copy
          while (j < n && m[kSlot * n + j] == m[kSlot * n + j - 1] + 1) ++j;
          check(cudaMemcpyAsync(
                    dst + size_t(i * kv_dim), src + size_t(m[kSlot * n + i]) * size_t(kv_dim),
                    size_t((j - i) * kv_dim) * sizeof(bf16_t), cudaMemcpyDeviceToHost, copy_stream),
                "cudaMemcpyAsync(kv out)");
          i = j;
        }
      }
      check(cudaEventRecord(kv_copied[size_t(l)], copy_stream), "cudaEventRecord");
    };
    layers(pre, n, attend, copy_out);
    const int64_t first = all_logits ? 0 : n - 1;
    if (logits) head(pre, first, n - first);
    check(cudaEventRecord(t1, stream), "cudaEventRecord");
    s.len += n;

    if (observer) {
      std::vector<float> kf(size_t(n * kv_dim)), vf(size_t(n * kv_dim));
      try {
        for (int64_t l = 0; l < hp.n_layer; ++l) {
          check(cudaEventSynchronize(kv_copied[size_t(l)]), "cudaEventSynchronize(kv out)");
          const bf16_t* kh = kv_host.get() + size_t(l * 2 * n * kv_dim);
          const bf16_t* vh = kh + size_t(n * kv_dim);
          for (size_t i = 0; i < kf.size(); ++i) {
            kf[i] = bf16_to_f32(kh[i]);
            vf[i] = bf16_to_f32(vh[i]);
          }
          observer(l, kf.data(), vf.data(), n);
        }
      } catch (...) {
        cudaStreamSynchronize(stream);
        cudaStreamSynchronize(copy_stream);
        throw;
      }
    }
    if (logits) {
      const int64_t rows = n - first;
      logits_host.reserve(size_t(rows * hp.n_vocab));
      check(cudaMemcpyAsync(logits_host.get(), pre.logits.get(),
                            size_t(rows * hp.n_vocab) * sizeof(float), cudaMemcpyDeviceToHost,
                            stream),
            "cudaMemcpyAsync(logits)");
    }
    check(cudaStreamSynchronize(stream), "prefill");
    if (profiling) collect_profile();
    profiling = false;
    float ms = 0;
    check(cudaEventElapsedTime(&ms, t0, t1), "cudaEventElapsedTime");
    last_s = ms / 1e3;
    if (logits) logits->assign(logits_host.get(), logits_host.get() + (n - first) * hp.n_vocab);
  }

  // Everything of one decode step after its meta is on the device: captured once per batch size.
  void decode_body(int64_t b) {
    const int n_split = decode_splits(b);
    embed_rows(w.tok_embd.get(), dec.meta.get(), int(b), int(d), dec.x.get(), stream);
    const auto attend = [&](int64_t l) {
      attention_rows(row_attention(dec, b, l, n_split), stream);
      merge_partials(dec.part_out.get(), dec.part_lse.get(), int(b), int(hp.n_head), n_split,
                     int(hd), dec.attn.get(), q_dim, nullptr, stream);
    };
    layers(dec, b, attend, [](int64_t) {});
    head(dec, 0, b);
    argmax_rows(dec.logits.get(), int(b), int(hp.n_vocab), dec.greedy.get(), stream);
  }

  void decode(std::span<const int> seq_ids, std::span<const int32_t> tokens,
              std::vector<float>* logits, std::vector<int32_t>* greedy) {
    const auto b = int64_t(seq_ids.size());
    if (b == 0 || b != int64_t(tokens.size()))
      fail("decode: {} sequences but {} tokens", b, tokens.size());
    if (b > opt.max_seqs) fail("decode: batch of {} exceeds max_seqs {}", b, opt.max_seqs);
    int32_t* m = meta_host.get();
    for (int64_t i = 0; i < b; ++i) {
      const int seq = seq_ids[size_t(i)];
      check_token_ids(tokens.subspan(size_t(i), 1), hp.n_vocab);
      Sequence& s = sequence(seq);
      for (int64_t k = 0; k < i; ++k) {
        if (seq_ids[size_t(k)] == seq) fail("decode: sequence {} appears twice in one batch", seq);
      }
      reserve_tokens(seq, 1, m + kSlot * b + i);
      m[kTokens * b + i] = tokens[size_t(i)];
      m[kPos * b + i] = int32_t(s.len);
      m[kSeq * b + i] = seq;
      m[kNkv * b + i] = int32_t(s.len + 1);
    }
    check(cudaEventRecord(t0, stream), "cudaEventRecord");
    upload_table();
    check(cudaMemcpyAsync(dec.meta.get(), m, size_t(kMetaFields * b) * sizeof(int32_t),
                          cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync(meta)");
    if (opt.graphs) {
      Graph& g = graphs[int(b)];
      if (!g.exec) {
        // One direct run first (the step is idempotent): the matrix products pick their
        // algorithms outside the capture.
        decode_body(b);
        cudaGraph_t graph = nullptr;
        check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture");
        try {
          decode_body(b);
        } catch (...) {
          cudaStreamEndCapture(stream, &graph);
          if (graph) cudaGraphDestroy(graph);
          throw;
        }
        check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
        const cudaError_t e = cudaGraphInstantiate(&g.exec, graph, 0);
        cudaGraphDestroy(graph);
        check(e, "cudaGraphInstantiate");
      }
      check(cudaGraphLaunch(g.exec, stream), "cudaGraphLaunch");
    } else {
      decode_body(b);
    }
    check(cudaEventRecord(t1, stream), "cudaEventRecord");
    if (greedy) {
      check(cudaMemcpyAsync(greedy_host.get(), dec.greedy.get(), size_t(b) * sizeof(int32_t),
                            cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync(greedy)");
    }
    if (logits) {
      logits_host.reserve(size_t(b * hp.n_vocab));
      check(cudaMemcpyAsync(logits_host.get(), dec.logits.get(),
                            size_t(b * hp.n_vocab) * sizeof(float), cudaMemcpyDeviceToHost, stream),
            "cudaMemcpyAsync(logits)");
    }
    check(cudaStreamSynchronize(stream), "decode");
    for (int64_t i = 0; i < b; ++i) ++sequence(seq_ids[size_t(i)]).len;
    float ms = 0;
    check(cudaEventElapsedTime(&ms, t0, t1), "cudaEventElapsedTime");
    last_s = ms / 1e3;
    if (greedy) greedy->assign(greedy_host.get(), greedy_host.get() + b);
    if (logits) logits->assign(logits_host.get(), logits_host.get() + b * hp.n_vocab);
  }
};

// The backend side of Engine (engine_backend.h).
class CudaEngine final : public EngineBackend {
 public:
  explicit CudaEngine(DeviceWeights weights, const EngineOptions& options)
      : impl_(std::move(weights), options) {}

  const HParams& hparams() const override { return impl_.hp; }
  int64_t weight_bytes() const override { return impl_.w.matrix_bytes(); }
  std::string device_name() const override { return impl_.name; }

  int open_sequence() override {
    for (size_t i = 0; i < impl_.seqs.size(); ++i) {
      if (!impl_.seqs[i].open) {
        impl_.seqs[i] = Sequence{true, 0, {}};
        return int(i);
      }
    }
    fail("CUDA engine: all {} sequences are open", impl_.seqs.size());
  }

  void close_sequence(int seq) override {
    Sequence& s = impl_.sequence(seq);
    impl_.free_pages.insert(impl_.free_pages.end(), s.pages.rbegin(), s.pages.rend());
    s = Sequence{};
  }

  int64_t seq_len(int seq) const override { return impl_.sequence(seq).len; }

  void prefill(int seq, std::span<const int32_t> tokens, std::vector<float>* logits,
               bool all_logits, const LayerSink& observer) override {
    impl_.prefill(seq, tokens, logits, all_logits, observer);
  }

  void decode(std::span<const int> seqs, std::span<const int32_t> tokens,
              std::vector<float>* logits, std::vector<int32_t>* greedy) override {
    impl_.decode(seqs, tokens, logits, greedy);
  }

  double last_device_seconds() const override { return impl_.last_s; }
  void set_profiling(bool on) override { impl_.profile_prefill = on; }
  std::vector<std::pair<std::string, double>> last_profile() const override {
    return impl_.profile;
  }

 private:
  EngineImpl impl_;
};

EngineBackend* create_from_model(const Model& model, const EngineOptions& options) {
  return new CudaEngine(upload_weights(model), options);
}

EngineBackend* create_random(const HParams& hp, uint64_t seed, const EngineOptions& options) {
  return new CudaEngine(random_weights(hp, seed), options);
}

}  // namespace
}  // namespace ep::cuda

// The plugin's one exported symbol (engine_backend.h).
extern "C" __attribute__((visibility("default"))) const ep::cuda::PluginApi* ep_cuda_plugin() {
  static const ep::cuda::PluginApi api = [] {
    ep::cuda::PluginApi a;
    a.device_available = &ep::cuda::plugin_device_available;
    a.create_from_model = &ep::cuda::create_from_model;
    a.create_random = &ep::cuda::create_random;
    return a;
  }();
  return &api;
}
