// One step of the serving engine on the GPU: decodes and prefill chunks of many sequences in one
// pass over the block pool. The weight products run once for all the step's tokens; attention
// runs over each sequence's own blocks (the decodes together, split over key ranges; each prefill
// chunk with the flash kernel), and over each shared prefix once for all the rows that share it
// (RelayAttention's relay fusion), the two parts merged exactly through their log-sum-exps.
#include "backend/cuda/engine_impl.h"

#include "core/token_list.h"

#include <chrono>
#include <numeric>

namespace ep::cuda {
namespace {

// One chunk of the step, at rows row0 .. row0 + n - 1 of the step's activations.
struct PlannedChunk {
  size_t index = 0;  // in the caller's order
  int64_t row0 = 0, n = 0, n_past = 0;
  const KvSegment* prefix = nullptr;
};

// Consecutive planned chunks that share a prefix: rows row0 .. row0 + rows - 1.
struct PrefixGroup {
  const KvSegment* segment = nullptr;
  DevicePrefix* device = nullptr;
  int64_t row0 = 0, rows = 0;
};

}  // namespace

void EngineImpl::configure_pool(int64_t n_blocks, int64_t block_tokens) {
  if (page_shift_of(block_tokens) < 0)
    fail("--kv-block {}: the GPU kernels take blocks of 16, 32 or 64 tokens", block_tokens);
  if (n_blocks < 1) fail("CUDA engine: a KV block pool needs at least one block");
  const size_t elems = size_t(hp.n_layer * n_blocks * block_tokens * kv_dim);
  pool.k.resize(0);
  pool.v.resize(0);
  pool.k.resize(elems);
  pool.v.resize(elems);
  pool.n_blocks = n_blocks;
  pool.block_tokens = block_tokens;
}

DevicePrefix& EngineImpl::device_prefix(const KvSegment& seg) {
  const auto it = sb.prefixes.find(&seg);
  if (it != sb.prefixes.end()) return it->second;
  DevicePrefix p;
  p.owner = seg.weak_from_this();
  p.n_tokens = seg.n_tokens();
  const size_t elems = size_t(hp.n_layer * p.rows() * kv_dim);
  p.k.resize(elems);
  p.v.resize(elems);
  std::vector<int32_t> identity(size_t(p.rows() / kPageTokens));
  std::iota(identity.begin(), identity.end(), 0);
  p.table.resize(identity.size());
  check(cudaMemcpy(p.table.get(), identity.data(), identity.size() * sizeof(int32_t),
                   cudaMemcpyHostToDevice),
        "cudaMemcpy(prefix table)");
  return sb.prefixes.emplace(&seg, std::move(p)).first->second;
}

double EngineImpl::prefix_layer(DevicePrefix& p, const KvSegment& seg, int64_t l) {
  if (p.layers_ready > l) return 0;
  const double waited = std::chrono::duration<double>(seg.wait_layer(l)).count();
  const size_t count = size_t(p.n_tokens * kv_dim);
  sb.staging.reserve(count);
  const KvArea area = p.area(kv_dim);
  for (int part = 0; part < 2; ++part) {
    // Stream-ordered: the staging buffer is reused only after to_bf16 has read it.
    check(cudaMemcpyAsync(sb.staging.get(), part == 0 ? seg.k(l) : seg.v(l), count * sizeof(float),
                          cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync(prefix layer)");
    to_bf16(sb.staging.get(), int64_t(count), part == 0 ? area.k_layer(l) : area.v_layer(l),
            stream);
  }
  p.layers_ready = l + 1;
  return waited;
}

void EngineImpl::set_sampleable(int64_t n, std::span<const int32_t> masked) {
  for (const int32_t id : masked) {
    if (id < 0 || id >= hp.n_vocab) fail("masked id {} is outside the vocabulary", id);
  }
  sb.n_sampleable = std::clamp<int64_t>(n, 1, hp.n_vocab);
  sb.masked.resize(masked.size());
  sb.n_masked = int64_t(masked.size());
  if (!masked.empty()) {
    check(cudaMemcpy(sb.masked.get(), masked.data(), masked.size() * sizeof(int32_t),
                     cudaMemcpyHostToDevice),
          "cudaMemcpy(masked ids)");
  }
}

void EngineImpl::step(std::span<const BatchChunk> chunks, std::vector<float>& logits,
                      std::vector<int32_t>* greedy, std::vector<LayerTiming>& timings) {
  if (pool.n_blocks == 0) fail("CUDA engine: the serving block pool is not configured");
  if (chunks.empty()) fail("no tokens to process");
  const int64_t bt = pool.block_tokens;

  // Chunks grouped by prefix (those without one first), decodes before prefill chunks in a group:
  // a group's rows are consecutive for the prefix pass, and its decodes for the row kernel.
  std::vector<size_t> order(chunks.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (chunks[a].prefix != chunks[b].prefix)
      return std::less<const KvSegment*>()(chunks[a].prefix, chunks[b].prefix);
    return chunks[a].tokens.size() == 1 && chunks[b].tokens.size() != 1;
  });
  std::vector<PlannedChunk> plan;
  std::vector<int64_t> row0_of(chunks.size());
  int64_t n = 0, stride = 1;
  for (const size_t i : order) {
    const BatchChunk& ch = chunks[i];
    const auto len = int64_t(ch.tokens.size());
    if (len == 0) fail("no tokens to process");
    check_token_ids(ch.tokens, hp.n_vocab);
    if (ch.n_past + len > int64_t(ch.blocks.size()) * bt) {
      fail("context full: {} tokens already, {} more would exceed the {} blocks of {} tokens",
           ch.n_past, len, ch.blocks.size(), bt);
    }
    for (const int32_t b : ch.blocks) {
      if (b < 0 || b >= pool.n_blocks)
        fail("KV block {} is outside the pool of {}", b, pool.n_blocks);
    }
    if (ch.prefix) {
      if (ch.prefix->n_layers() != hp.n_layer || ch.prefix->row_size() != kv_dim) {
        fail("prefix KV has {} layers x {} values per token; the model needs {} x {}",
             ch.prefix->n_layers(), ch.prefix->row_size(), hp.n_layer, kv_dim);
      }
      if (hp.sliding_window > 0)
        fail("a shared prefix with sliding-window attention is not supported on the GPU");
      if (!flash_supported(int(hd)))
        fail("a shared prefix on the GPU needs head_dim 64 or 128 (this model: {})", hd);
    }
    plan.push_back({i, n, len, ch.n_past, ch.prefix});
    row0_of[i] = n;
    n += len;
    stride = std::max(stride, int64_t(ch.blocks.size()));
  }
  if (n > 65535) fail("a step of {} tokens; at most 65535", n);
  // Block tables padded to a multiple of 64 blocks: the row width (a kernel argument) then
  // changes rarely, so a captured decode step can be replayed for many steps.
  stride = (stride + 63) / 64 * 64;

  // Copies of prefixes whose segment is gone are dropped (their memory may be needed now).
  for (auto it = sb.prefixes.begin(); it != sb.prefixes.end();) {
    it = it->second.owner.expired() ? sb.prefixes.erase(it) : std::next(it);
  }
  std::vector<PrefixGroup> groups;
  for (const PlannedChunk& c : plan) {
    if (!c.prefix) continue;
    if (groups.empty() || groups.back().segment != c.prefix)
      groups.push_back({c.prefix, &device_prefix(*c.prefix), c.row0, 0});
    groups.back().rows += c.n;
  }

  // Host-side tables: per row its token, positions and cache row; per chunk its blocks; the rows
  // whose logits are wanted, in the caller's chunk order.
  meta_host.reserve(size_t(kMetaFields * n));
  int32_t* m = meta_host.get();
  sb.table_host.reserve(size_t(int64_t(plan.size()) * stride));
  int32_t* table = sb.table_host.get();
  for (size_t p = 0; p < plan.size(); ++p) {
    const PlannedChunk& c = plan[p];
    const BatchChunk& ch = chunks[c.index];
    const int64_t n_prefix = c.prefix ? c.prefix->n_tokens() : 0;
    for (int64_t s = 0; s < stride; ++s)
      table[int64_t(p) * stride + s] = s < int64_t(ch.blocks.size()) ? ch.blocks[size_t(s)] : 0;
    for (int64_t i = 0; i < c.n; ++i) {
      const int64_t r = c.row0 + i, own = c.n_past + i;
      m[kTokens * n + r] = ch.tokens[size_t(i)];
      m[kPos * n + r] = int32_t(n_prefix + own);  // RoPE: the position in the whole sequence
      m[kRel * n + r] = int32_t(own);             // attention over the own keys
      m[kSlot * n + r] = ch.blocks[size_t(own / bt)] * int32_t(bt) + int32_t(own % bt);
      m[kSeq * n + r] = int32_t(p);
      m[kNkv * n + r] = int32_t(c.n_past + c.n);
    }
  }
  sb.rows_host.reserve(chunks.size());
  int64_t n_logits = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (chunks[i].logits)
      sb.rows_host.get()[n_logits++] = int32_t(row0_of[i] + int64_t(chunks[i].tokens.size()) - 1);
  }

  // Partial results of the row kernel: the decodes split over key ranges (up to 32), or a whole
  // chunk unsplit when the flash kernel does not take the head size.
  int64_t part_rows = 1;
  for (const PlannedChunk& c : plan) part_rows = std::max(part_rows, c.n == 1 ? 32 : c.n);
  part_rows = std::max(part_rows, int64_t(plan.size()) * 32);
  size_rows(stp, n, false);
  stp.part_out.reserve(size_t(part_rows * hp.n_head * hd));
  stp.part_lse.reserve(size_t(part_rows * hp.n_head));
  sb.lse_own.reserve(size_t(n * hp.n_head));
  // A prefix's keys are split so that its pass fills the chip however few rows attend it (each
  // split one flash block per query tile and head), up to a split per 128 keys.
  const auto prefix_splits = [&](const PrefixGroup& g) {
    const int64_t blocks = (g.rows + 63) / 64 * hp.n_head;
    const int64_t want = (2 * int64_t(n_sm) + blocks - 1) / blocks;
    return int(
        std::clamp<int64_t>(want, 1, std::min<int64_t>(16, (g.device->n_tokens + 127) / 128)));
  };
  int max_splits = 1;
  for (const PrefixGroup& g : groups) max_splits = std::max(max_splits, prefix_splits(g));
  sb.lse_prefix.reserve(size_t(max_splits * n * hp.n_head));
  sb.attn_prefix.reserve(size_t(max_splits * n * q_dim));
  sb.table.reserve(size_t(int64_t(plan.size()) * stride));
  sb.rows.reserve(size_t(std::max<int64_t>(n_logits, 1)));

  check(cudaEventRecord(t0, stream), "cudaEventRecord");
  check(cudaMemcpyAsync(stp.meta.get(), m, size_t(kMetaFields * n) * sizeof(int32_t),
                        cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync(meta)");
  check(cudaMemcpyAsync(sb.table.get(), table,
                        size_t(int64_t(plan.size()) * stride) * sizeof(int32_t),
                        cudaMemcpyHostToDevice, stream),
        "cudaMemcpyAsync(block tables)");
  if (n_logits) {
    check(cudaMemcpyAsync(sb.rows.get(), sb.rows_host.get(), size_t(n_logits) * sizeof(int32_t),
                          cudaMemcpyHostToDevice, stream),
          "cudaMemcpyAsync(logit rows)");
  }

  const KvArea kv = pool.area(kv_dim);
  const int32_t* meta = stp.meta.get();
  const float scale = float(1.0 / std::sqrt(double(hd)));
  timings.assign(size_t(hp.n_layer), {});
  const auto own_part = [&](int64_t l) {
    for (size_t p = 0; p < plan.size();) {
      const PlannedChunk& c = plan[p];
      float* lse = c.prefix ? sb.lse_own.get() + c.row0 * hp.n_head : nullptr;
      if (c.n == 1 || !flash_supported(int(hd))) {
        // A run of one group's decodes (or, without the flash kernel, one chunk): the row kernel.
        size_t q = p + 1;
        int64_t rows = c.n;
        while (c.n == 1 && q < plan.size() && plan[q].prefix == c.prefix && plan[q].n == 1) {
          ++rows;
          ++q;
        }
        const int n_split = c.n == 1 ? decode_splits(rows) : 1;
        RowAttention r;
        r.q = stp.q.get() + c.row0 * q_dim;
        r.q_stride = q_dim;
        r.n_rows = int(rows);
        r.row_pos = meta + kRel * n + c.row0;
        r.row_seq = meta + kSeq * n + c.row0;
        r.row_nkv = meta + kNkv * n + c.row0;
        r.kv = kv.layer(l);
        r.table = sb.table.get();
        r.table_stride = int(stride);
        r.n_head = int(hp.n_head);
        r.n_head_kv = int(hp.n_head_kv);
        r.head_dim = int(hd);
        r.scale = scale;
        r.window = int(hp.sliding_window);
        r.n_split = n_split;
        r.part_out = stp.part_out.get();
        r.part_lse = stp.part_lse.get();
        attention_rows(r, stream);
        merge_partials(stp.part_out.get(), stp.part_lse.get(), int(rows), int(hp.n_head), n_split,
                       int(hd), stp.attn.get() + c.row0 * q_dim, q_dim, lse, stream);
        p = q;
        continue;
      }
      FlashPrefill f;
      f.q = stp.q.get() + c.row0 * q_dim;
      f.q_stride = q_dim;
      f.n_q = int(c.n);
      f.q_pos0 = int(c.n_past);
      f.kv = kv.layer(l);
      f.table = sb.table.get() + int64_t(p) * stride;
      f.n_kv = int(c.n_past + c.n);
      f.n_head = int(hp.n_head);
      f.n_head_kv = int(hp.n_head_kv);
      f.head_dim = int(hd);
      f.scale = scale;
      f.window = int(hp.sliding_window);
      f.out = stp.attn.get() + c.row0 * q_dim;
      f.out_stride = q_dim;
      f.lse = lse;
      attention_flash(f, stream);
      ++p;
    }
  };
  const auto prefix_part = [&](int64_t l) {
    for (const PrefixGroup& g : groups) {
      timings[size_t(l)].wait_s += prefix_layer(*g.device, *g.segment, l);
      const int64_t n_prefix = g.device->n_tokens;
      FlashPrefill f;
      f.q = stp.q.get() + g.row0 * q_dim;
      f.q_stride = q_dim;
      f.n_q = int(g.rows);
      f.q_pos0 = int(n_prefix);  // after every prefix key: none is masked
      f.kv = g.device->area(kv_dim).layer(l);
      f.table = g.device->table.get();
      f.n_kv = int(n_prefix);
      f.n_head = int(hp.n_head);
      f.n_head_kv = int(hp.n_head_kv);
      f.head_dim = int(hd);
      f.scale = scale;
      f.out = sb.attn_prefix.get() + g.row0 * q_dim;
      f.out_stride = q_dim;
      f.lse = sb.lse_prefix.get() + g.row0 * hp.n_head;
      f.n_split = prefix_splits(g);
      f.split_out_stride = n * q_dim;
      f.split_lse_stride = n * hp.n_head;
      attention_flash(f, stream);
      merge_parts(stp.attn.get() + g.row0 * q_dim, sb.lse_own.get() + g.row0 * hp.n_head,
                  sb.attn_prefix.get() + g.row0 * q_dim, sb.lse_prefix.get() + g.row0 * hp.n_head,
                  f.n_split, n * q_dim, n * hp.n_head, int(g.rows), int(hp.n_head), int(hd), q_dim,
                  stream);
    }
  };
  // Everything after the uploads: launched directly, or replayed from a captured graph.
  const auto body = [&] {
    embed(meta + kTokens * n, n, stp.x.get());
    layers(
        stp, n, kv,
        [&](int64_t l) {
          own_part(l);
          prefix_part(l);
        },
        [](int64_t) {});
    if (n_logits) {
      sb.gathered.reserve(size_t(n_logits * d));
      gather_rows(stp.x.get(), sb.rows.get(), int(n_logits), int(d), sb.gathered.get(), stream);
      head(stp, sb.gathered.get(), n_logits);
      if (greedy) {
        const int64_t keep = sb.n_sampleable > 0 ? sb.n_sampleable : hp.n_vocab;
        mask_logits(stp.logits.get(), int(n_logits), int(hp.n_vocab), int(keep), sb.masked.get(),
                    int(sb.n_masked), stream);
        argmax_rows(stp.logits.get(), int(n_logits), int(hp.n_vocab), stp.greedy.get(), stream);
      }
    }
  };
  // A step of decodes only, every prefix on the device: its launches depend on the batch's shape
  // alone (the rows' data is in the uploaded tables), so it is captured once per shape and
  // replayed. The key holds the shape and every buffer the launches point into.
  bool replay = opt.graphs;
  for (const PlannedChunk& c : plan) replay &= c.n == 1;
  for (const PrefixGroup& g : groups) replay &= g.device->layers_ready == hp.n_layer;
  const auto graph_key = [&] {
    std::vector<uintptr_t> key = {uintptr_t(n), uintptr_t(stride), uintptr_t(n_logits),
                                  uintptr_t(greedy != nullptr)};
    for (const PrefixGroup& g : groups) {
      key.insert(key.end(), {uintptr_t(g.device->k.get()), uintptr_t(g.row0), uintptr_t(g.rows)});
    }
    for (const void* p : {(const void*)stp.x.get(),         (const void*)stp.xn.get(),
                          (const void*)stp.qkv.get(),       (const void*)stp.q.get(),
                          (const void*)stp.attn.get(),      (const void*)stp.gu.get(),
                          (const void*)stp.h.get(),         (const void*)stp.meta.get(),
                          (const void*)stp.logits.get(),    (const void*)stp.greedy.get(),
                          (const void*)stp.part_out.get(),  (const void*)stp.part_lse.get(),
                          (const void*)sb.table.get(),      (const void*)sb.rows.get(),
                          (const void*)sb.gathered.get(),   (const void*)sb.lse_own.get(),
                          (const void*)sb.lse_prefix.get(), (const void*)sb.attn_prefix.get(),
                          (const void*)pool.k.get(),        (const void*)pool.v.get()}) {
      key.push_back(uintptr_t(p));
    }
    return key;
  };
  try {
    if (replay) {
      auto key = graph_key();
      if (!step_graphs.count(key)) {
        body();  // direct first: buffers reach their size and cuBLAS picks outside the capture
        key = graph_key();
      }
      Graph& g = step_graphs[key];
      if (!g.exec) {
        if (step_graphs.size() > 256) {  // many shapes seen: start again
          for (auto& [k, old] : step_graphs) {
            if (old.exec) cudaGraphExecDestroy(old.exec);
          }
          step_graphs.clear();
        }
        Graph& fresh = step_graphs[key];
        cudaGraph_t graph = nullptr;
        check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
              "cudaStreamBeginCapture");
        try {
          body();
        } catch (...) {
          cudaStreamEndCapture(stream, &graph);
          if (graph) cudaGraphDestroy(graph);
          step_graphs.erase(key);
          throw;
        }
        check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
        const cudaError_t e = cudaGraphInstantiate(&fresh.exec, graph, 0);
        cudaGraphDestroy(graph);
        if (e != cudaSuccess) step_graphs.erase(key);
        check(e, "cudaGraphInstantiate");
      }
      check(cudaGraphLaunch(step_graphs[key].exec, stream), "cudaGraphLaunch");
    } else {
      body();
    }
    if (n_logits) {
      if (greedy) {
        greedy_host.reserve(size_t(n_logits));
        check(cudaMemcpyAsync(greedy_host.get(), stp.greedy.get(),
                              size_t(n_logits) * sizeof(int32_t), cudaMemcpyDeviceToHost, stream),
              "cudaMemcpyAsync(greedy)");
      } else {
        logits_host.reserve(size_t(n_logits * hp.n_vocab));
        check(cudaMemcpyAsync(logits_host.get(), stp.logits.get(),
                              size_t(n_logits * hp.n_vocab) * sizeof(float), cudaMemcpyDeviceToHost,
                              stream),
              "cudaMemcpyAsync(logits)");
      }
    }
    check(cudaEventRecord(t1, stream), "cudaEventRecord");
    check(cudaStreamSynchronize(stream), "serving step");
  } catch (...) {
    cudaStreamSynchronize(stream);  // nothing still reads the buffers when the caller goes on
    throw;
  }
  float ms = 0;
  check(cudaEventElapsedTime(&ms, t0, t1), "cudaEventElapsedTime");
  last_s = ms / 1e3;
  for (LayerTiming& t : timings) t.compute_s = last_s / double(hp.n_layer);
  if (greedy) {
    logits.clear();
    greedy->assign(greedy_host.get(), greedy_host.get() + n_logits);
  } else {
    logits.assign(logits_host.get(), logits_host.get() + n_logits * hp.n_vocab);
  }
}

}  // namespace ep::cuda
