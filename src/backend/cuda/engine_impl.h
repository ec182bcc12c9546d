// The CUDA engine's state and its layer loop, shared by the passes that run it: the prefill of one
// sequence and the batched decode (cuda_engine.cpp), and the serving engine's mixed steps over the
// block pool (serving_step.cpp).
#pragma once

#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/device_weights.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/serving_pool.h"
#include "core/error.h"
#include "runtime/batch_forward.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ep::cuda {

// Activations of one pass, [rows, width] each.
struct Activations {
  DeviceBuffer<float> x, qkv, logits, part_out, part_lse;
  DeviceBuffer<bf16_t> xn, q, attn, gu, h;
  DeviceBuffer<int32_t> meta;  // tokens | pos | slot | seq | nkv, n each
  DeviceBuffer<int32_t> greedy;
  int64_t rows = 0;
};

// Per-row fields of a pass's meta (n rows each): token, position (RoPE), cache row, page-table
// row, keys visible, and the position among the sequence's own keys (serving steps).
enum Meta { kTokens, kPos, kSlot, kSeq, kNkv, kRel, kMetaFields };

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
  // The bf16 copy of one native matrix a batched product dequantises into (one stream: products
  // run one after another, so one buffer serves them all).
  DeviceBuffer<bf16_t> wscratch;
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
  // The serving engine's steps (serving_step.cpp): their activations, block pool and prefixes.
  Activations stp;
  BlockPoolMemory pool;
  StepBuffers sb;
  PinnedBuffer<int32_t> meta_host;
  PinnedBuffer<float> logits_host;
  PinnedBuffer<int32_t> greedy_host;
  PinnedBuffer<bf16_t> kv_host;
  std::map<int, Graph> graphs;                          // decode step per batch size
  std::map<std::vector<uintptr_t>, Graph> step_graphs;  // serving decode steps per shape

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
    // Architectures whose layers do more than Llama's (Qwen3's head norms, Gemma 3's layer pattern,
    // scales and post-norms, Phi-3's fused matrices) are computed by the CPU loop only.
    if ((hp.arch != "llama" && hp.arch != "mistral" && hp.arch != "qwen2") || hp.qk_norm ||
        hp.post_norms || !hp.sliding_layers.empty() || hp.rope_theta_sliding > 0 ||
        hp.embd_scale != 1.0f || hp.attn_scale > 0 || hp.ffn_act != FfnActivation::Silu ||
        hp.final_logit_softcap > 0)
      fail("CUDA backend: architecture '{}' is not supported on the GPU (use --device cpu)",
           hp.arch);
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
    wscratch.resize(size_t(w.scratch_elems()));
    size_rows(dec, opt.max_seqs, true);
    greedy_host.reserve(size_t(opt.max_seqs));
    meta_host.reserve(size_t(kMetaFields * opt.max_seqs));
  }

  ~EngineImpl() {
    for (auto& [b, g] : graphs) cudaGraphExecDestroy(g.exec);
    for (auto& [k, g] : step_graphs) {
      if (g.exec) cudaGraphExecDestroy(g.exec);
    }
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
  void matmul(const bf16_t* x, int64_t n, int64_t in, const DeviceMatrix& W, int64_t out, void* y,
              cudaDataType y_type, bool accumulate) {
    const GemvOut mode = y_type == CUDA_R_16BF ? GemvOut::BF16
                         : accumulate          ? GemvOut::F32Add
                                               : GemvOut::F32;
    if (W.native) {
      native_matmul(W, x, n, y, mode, wscratch.get(), stream, [&](const bf16_t* wm) {
        gemm.run(x, n, in, wm, out, y, y_type, accumulate, stream);
      });
      return;
    }
    if (n == 1) {
      gemv(W.bf16(), x, int(out), int(in), y, mode, stream);
      return;
    }
    gemm.run(x, n, in, W.bf16(), out, y, y_type, accumulate, stream);
  }

  // h [n, ff] = swiglu(x W_gu^T).
  void gate_up(Activations& a, int64_t n, const DeviceMatrix& W) {
    const bool fused =
        !W.native || (W.segments.size() == 2 && W.segments[0].type == W.segments[1].type);
    if (n == 1 && fused) {
      // Batch 1: the GEMV applies SwiGLU to each gate/up row pair itself (one kernel fewer).
      if (W.native) {
        QuantGemv g;
        g.type = W.segments[0].type;
        g.w = W.segment_data(W.segments[0]);
        g.up = W.segment_data(W.segments[1]);
        g.rows = int(ff);
        g.cols = int(d);
        g.x = a.xn.get();
        g.y = a.h.get();
        g.ldy = ff;
        g.out = GemvOut::SwiGLU;
        gemv_quant(g, stream);
      } else {
        gemv(W.bf16(), a.xn.get(), int(ff), int(d), a.h.get(), GemvOut::SwiGLU, stream);
      }
      mark("gemm gate+up");
      return;
    }
    matmul(a.xn.get(), n, d, W, 2 * ff, a.gu.get(), CUDA_R_16BF, false);
    mark("gemm gate+up");
    swiglu(a.gu.get(), int(n), int(ff), a.h.get(), stream);
    mark("swiglu");
  }

  // x [n, d] = the token embeddings of `tokens` (device, n of them).
  void embed(const int32_t* tokens, int64_t n, float* x) {
    if (w.tok_embd.native) {
      const MatrixSegment& seg = w.tok_embd.segments[0];
      embed_rows_quant(seg.type, w.tok_embd.segment_data(seg), tokens, int(n), int(d), x, stream);
    } else {
      embed_rows(w.tok_embd.bf16(), tokens, int(n), int(d), x, stream);
    }
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
  KvArea cache_area() const {
    return {k_cache.get(), v_cache.get(), n_pages * kPageTokens, kv_dim, 6};
  }

  template <typename Attend, typename AfterKv>
  void layers(Activations& a, int64_t n, const KvArea& kv, Attend&& attend, AfterKv&& after_kv) {
    const int32_t* meta = a.meta.get();
    mark("embed");
    for (int64_t l = 0; l < hp.n_layer; ++l) {
      const DeviceLayer& L = w.layers[size_t(l)];
      rmsnorm(a.x.get(), L.attn_norm.get(), int(n), int(d), hp.rms_norm_eps, a.xn.get(), stream);
      mark("rmsnorm");
      matmul(a.xn.get(), n, d, L.wqkv, qkv_dim, a.qkv.get(), CUDA_R_32F, false);
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
      r.k_cache = kv.k_layer(l);
      r.v_cache = kv.v_layer(l);
      qkv_rope(r, stream);
      after_kv(l);
      mark("bias+rope+kv append");
      attend(l);
      mark("attention");
      matmul(a.attn.get(), n, q_dim, L.wo, d, a.x.get(), CUDA_R_32F, true);
      if (L.bo.size()) add_rows(a.x.get(), L.bo.get(), int(n), int(d), stream);
      mark("gemm o");
      rmsnorm(a.x.get(), L.ffn_norm.get(), int(n), int(d), hp.rms_norm_eps, a.xn.get(), stream);
      mark("rmsnorm");
      gate_up(a, n, L.wgu);
      matmul(a.h.get(), n, ff, L.wdown, d, a.x.get(), CUDA_R_32F, true);
      mark("gemm down");
    }
  }

  // Final norm and output head for `rows` consecutive rows of the residual stream at x.
  void head(Activations& a, const float* x, int64_t rows) {
    rmsnorm(x, w.output_norm.get(), int(rows), int(d), hp.rms_norm_eps, a.xn.get(), stream);
    a.logits.reserve(size_t(rows * hp.n_vocab));
    matmul(a.xn.get(), rows, d, w.output, hp.n_vocab, a.logits.get(), CUDA_R_32F, false);
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
    r.kv = cache_area().layer(l);
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
               bool all_logits, const LayerSink& observer);
  // Everything of one decode step after its meta is on the device: captured once per batch size.
  void decode_body(int64_t b);
  void decode(std::span<const int> seq_ids, std::span<const int32_t> tokens,
              std::vector<float>* logits, std::vector<int32_t>* greedy);
  // The serving engine's block pool and steps over it (serving_step.cpp).
  void configure_pool(int64_t n_blocks, int64_t block_tokens);
  DevicePrefix& device_prefix(const KvSegment& seg);
  // Brings layer l of a prefix to the device (waiting for it to arrive); returns seconds waited.
  double prefix_layer(DevicePrefix& p, const KvSegment& seg, int64_t l);
  void step(std::span<const BatchChunk> chunks, std::vector<float>& logits,
            std::vector<int32_t>* greedy, std::vector<LayerTiming>& timings);
  void set_sampleable(int64_t n, std::span<const int32_t> masked);
};

}  // namespace ep::cuda
