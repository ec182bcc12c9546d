#include "model/fingerprint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <xxhash.h>

#include <algorithm>
#include <memory>

namespace ep {

std::string canonical_hparams(const HParams& hp) {
  // The fields of the later architectures are appended only when set, so that the fingerprints
  // of the others stay what they were.
  std::string extra;
  if (hp.qk_norm) extra += " qk_norm=1";
  if (!hp.sliding_layers.empty()) {
    extra += " sliding_layers=";
    for (const bool s : hp.sliding_layers) extra += s ? '1' : '0';
  }
  if (hp.rope_theta_sliding > 0) extra += fmt::format(" theta_sliding={:a}", hp.rope_theta_sliding);
  if (hp.embd_scale != 1.0f) extra += fmt::format(" embd_scale={:a}", hp.embd_scale);
  if (hp.attn_scale > 0) extra += fmt::format(" attn_scale={:a}", hp.attn_scale);
  if (hp.post_norms) extra += " post_norms=1";
  if (hp.ffn_act != FfnActivation::Silu) extra += fmt::format(" ffn_act={}", int(hp.ffn_act));
  if (hp.final_logit_softcap > 0) extra += fmt::format(" softcap={:a}", hp.final_logit_softcap);
  const std::string base = fmt::format(
      "arch={} vocab={} embd={} layers={} heads={} kv_heads={} head_dim={} ff={} eps={:a} "
      "theta={:a} scaling={} factor={:a} low={:a} high={:a} orig={} layout={} bias={} tied={} "
      "window={}",
      hp.arch, hp.n_vocab, hp.n_embd, hp.n_layer, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff,
      hp.rms_norm_eps, hp.rope_theta, int(hp.rope_scaling.type), hp.rope_scaling.factor,
      hp.rope_scaling.low_freq_factor, hp.rope_scaling.high_freq_factor,
      hp.rope_scaling.original_max_position, int(hp.rope_layout), hp.attn_qkv_bias,
      hp.tied_embeddings, hp.sliding_window);
  return base + extra;
}

std::string model_fingerprint(const WeightSource& source) {
  constexpr uint64_t kWhole = 1 << 20;
  constexpr uint64_t kWindow = 64 << 10;
  constexpr uint64_t kWindows = 16;

  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> st(XXH3_createState(),
                                                                    &XXH3_freeState);
  XXH3_128bits_reset(st.get());
  const auto add = [&](const void* p, size_t n) { XXH3_128bits_update(st.get(), p, n); };
  const auto add_str = [&](const std::string& s) {
    const uint64_t n = s.size();
    add(&n, sizeof n);
    add(s.data(), s.size());
  };
  add_str("edgeprompt-fingerprint-v1");
  add_str(canonical_hparams(source.hparams()));
  add_str(source.tokenizer_identity());

  auto tensors = source.all_tensors();
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorRef& a, const TensorRef& b) { return a.name < b.name; });
  for (const auto& t : tensors) {
    add_str(t.name);
    add_str(fmt::format("{} {}", uint32_t(t.type), fmt::join(t.shape, "x")));
    add(&t.n_bytes, sizeof t.n_bytes);
    const auto* p = static_cast<const uint8_t*>(t.data);
    if (t.n_bytes <= kWhole) {
      add(p, t.n_bytes);
    } else {
      for (uint64_t i = 0; i < kWindows; ++i) {
        add(p + i * (t.n_bytes - kWindow) / (kWindows - 1), kWindow);
      }
    }
  }
  const XXH128_hash_t h = XXH3_128bits_digest(st.get());
  return fmt::format("xxh3-128:{:016x}{:016x}", h.high64, h.low64);
}

}  // namespace ep
