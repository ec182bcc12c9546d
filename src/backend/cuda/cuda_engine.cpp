// The prefill of one sequence and the batched decode of many on the GPU, and the plugin's entry
// point (engine_backend.h).
#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/engine_backend.h"
#include "backend/cuda/engine_impl.h"

#include "core/half.h"
#include "core/token_list.h"

namespace ep::cuda {

void EngineImpl::prefill(int seq, std::span<const int32_t> tokens, std::vector<float>* logits,
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
  embed(pre.meta.get(), n, pre.x.get());
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const auto attend = [&](int64_t l) {
    if (flash_supported(int(hd))) {
      FlashPrefill f;
      f.q = pre.q.get();
      f.q_stride = q_dim;
      f.n_q = int(n);
      f.q_pos0 = int(past);
      f.kv = cache_area().layer(l);
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
  layers(pre, n, cache_area(), attend, copy_out);
  const int64_t first = all_logits ? 0 : n - 1;
  if (logits) head(pre, pre.x.get() + first * d, n - first);
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
    check(
        cudaMemcpyAsync(logits_host.get(), pre.logits.get(),
                        size_t(rows * hp.n_vocab) * sizeof(float), cudaMemcpyDeviceToHost, stream),
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
void EngineImpl::decode_body(int64_t b) {
  const int n_split = decode_splits(b);
  embed(dec.meta.get(), b, dec.x.get());
  const auto attend = [&](int64_t l) {
    attention_rows(row_attention(dec, b, l, n_split), stream);
    merge_partials(dec.part_out.get(), dec.part_lse.get(), int(b), int(hp.n_head), n_split, int(hd),
                   dec.attn.get(), q_dim, nullptr, stream);
  };
  layers(dec, b, cache_area(), attend, [](int64_t) {});
  head(dec, dec.x.get(), b);
  argmax_rows(dec.logits.get(), int(b), int(hp.n_vocab), dec.greedy.get(), stream);
}

void EngineImpl::decode(std::span<const int> seq_ids, std::span<const int32_t> tokens,
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

  uint64_t free_device_bytes() const override {
    size_t free = 0, total = 0;
    check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    return free;
  }
  void configure_pool(int64_t n_blocks, int64_t block_tokens) override {
    impl_.configure_pool(n_blocks, block_tokens);
  }
  void step(std::span<const BatchChunk> chunks, std::vector<float>& logits,
            std::vector<int32_t>* greedy, std::vector<LayerTiming>& timings) override {
    impl_.step(chunks, logits, greedy, timings);
  }
  void set_sampleable(int64_t n, std::span<const int32_t> masked) override {
    impl_.set_sampleable(n, masked);
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
  return new CudaEngine(upload_weights(model, options.native_weights), options);
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
