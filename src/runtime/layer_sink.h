// The one callback through which a prefill hands out each layer's keys and values as soon as the
// layer is computed: how the cloud publishes a prompt layer by layer, whichever engine (the CPU
// Transformer, the CUDA Engine) computes it.
#pragma once

#include <cstdint>
#include <functional>

namespace ep {

// k and v: [n_tokens, n_head_kv * head_dim] f32 each, valid during the call; layers in order.
using LayerSink =
    std::function<void(int64_t layer, const float* k, const float* v, int64_t n_tokens)>;

}  // namespace ep
