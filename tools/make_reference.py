#!/usr/bin/env python3
"""Build tiny random-weight Hugging Face models and record float64 reference logits.

Runs where torch and transformers are installed (the GPU machine); needs no network.
The output directory becomes tests/fixtures/models/:

  <model>/config.json, model.safetensors      the model, float32 weights (as saved by transformers)
  <model>/reference/prompt_<n>.txt            the token ids of each prompt, comma separated
  <model>/reference/logits_<n>.npy            float64 logits [n, vocab] computed in float64, eager attention
  <model>/reference/greedy_<n>.txt            20 greedy tokens continuing the prompt (float64)
  <model>/reference/logits_40.<t>.npy         float32 copies of the logits of the same model whose 2-D
                                              weights were first rounded as our converter stores them
                                              in GGUF type <t> (bf16, q8_0, q4_0), computed in float64:
                                              what a faithful engine must compute from such a file
  qwen2-bias-bf16/                            the qwen2 model saved again in bfloat16, sharded, with its
                                              own reference computed from the bf16 weights in float64
  manifest.json                               versions and seeds

Usage: python3 tools/make_reference.py OUT_DIR
"""
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

VOCAB = 1000
PROMPT_LENGTHS = (8, 40, 150)
GREEDY_TOKENS = 20
SEED = 20261124


def common(**kw):
    base = dict(vocab_size=VOCAB, initializer_range=0.08, max_position_embeddings=512,
                rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2)
    base.update(kw)
    return base


def model_specs():
    return {
        # Llama with grouped-query attention (4 query heads share 2 KV heads), untied output.
        "llama-gqa": (LlamaForCausalLM, LlamaConfig(**common(
            hidden_size=64, intermediate_size=176, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, rope_theta=10000.0, tie_word_embeddings=False))),
        # Llama 3.1-style RoPE scaling, explicit head_dim (4*32 != 96), one KV head, tied embeddings.
        # original_max_position_embeddings is small so that all three frequency bands occur.
        "llama3-rope": (LlamaForCausalLM, LlamaConfig(**common(
            hidden_size=96, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=1, head_dim=32, tie_word_embeddings=True,
            rope_theta=500000.0,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}))),
        # Qwen2 with q/k/v biases (randomised below: transformers initialises them to zero).
        "qwen2-bias": (Qwen2ForCausalLM, Qwen2Config(**common(
            hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, rope_theta=1000000.0, tie_word_embeddings=True,
            use_sliding_window=False))),
        # Mistral with full multi-head attention and a sliding window shorter than the long prompt.
        "mistral-mha": (MistralForCausalLM, MistralConfig(**common(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, rope_theta=10000.0, tie_word_embeddings=False,
            sliding_window=64))),
    }


def randomise_norms_and_biases(model, gen):
    """transformers sets norm weights to 1 and biases to 0; make them informative."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.08 * torch.randn(p.shape, generator=gen))


def f16_round(x):
    return x.astype(np.float16).astype(np.float64)


def q8_0_round(w):
    """ggml's reference Q8_0: per 32 values d = max|x|/127 (stored as f16), q = round(x/d)."""
    x = w.astype(np.float32).reshape(-1, 32)
    d = np.abs(x).max(axis=1) / np.float32(127)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = x * inv[:, None]
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)  # round half away from zero, as lround
    return (q * f16_round(d)[:, None]).reshape(w.shape)


def q4_0_round(w):
    """ggml's reference Q4_0: the value of largest magnitude maps to -8, d stored as f16."""
    x = w.astype(np.float32).reshape(-1, 32)
    idx = np.abs(x).argmax(axis=1)
    mx = x[np.arange(len(x)), idx]
    d = (mx / np.float32(-8)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = np.minimum(15, np.trunc(x * inv[:, None] + np.float32(8.5)).astype(np.int32))
    return ((q - 8) * f16_round(d)[:, None]).reshape(w.shape)


def round_like_gguf(w, name, dtype):
    """The values our converter stores for a 2-D weight (see src/convert/converter.cpp)."""
    if dtype == "bf16":
        return torch.from_numpy(w).to(torch.bfloat16).to(torch.float64).numpy()
    if dtype == "q4_0" and ("embed_tokens" in name or "lm_head" in name):
        dtype = "q8_0"  # kept at 8 bits in 4-bit files
    if w.shape[1] % 32 != 0:
        return f16_round(w)  # rows that do not fill 32-element blocks fall back to f16
    return q8_0_round(w) if dtype == "q8_0" else q4_0_round(w)


def rounded_reference(model_f64, dtype, ids):
    """Logits of a float64 copy whose 2-D parameters are rounded as stored in GGUF `dtype`."""
    import copy
    m = copy.deepcopy(model_f64)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.from_numpy(round_like_gguf(p.numpy(), name, dtype)))
        x = torch.tensor([ids], dtype=torch.long)
        return m(input_ids=x).logits[0].numpy().astype(np.float32)


def reference(model_f64, prompts):
    out = {}
    with torch.no_grad():
        for ids in prompts:
            x = torch.tensor([ids], dtype=torch.long)
            logits = model_f64(input_ids=x).logits[0].numpy().astype(np.float64)
            greedy = model_f64.generate(x, max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                        min_new_tokens=GREEDY_TOKENS, eos_token_id=None,
                                        pad_token_id=0)[0, len(ids):].tolist()
            out[len(ids)] = (logits, greedy)
    return out


def write_reference(dir_, prompts, ref):
    rdir = os.path.join(dir_, "reference")
    os.makedirs(rdir, exist_ok=True)
    for ids in prompts:
        n = len(ids)
        logits, greedy = ref[n]
        with open(os.path.join(rdir, f"prompt_{n}.txt"), "w") as f:
            f.write(",".join(map(str, ids)) + "\n")
        np.save(os.path.join(rdir, f"logits_{n}.npy"), logits)
        with open(os.path.join(rdir, f"greedy_{n}.txt"), "w") as f:
            f.write(",".join(map(str, greedy)) + "\n")


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/models"
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    prompts = [rng.integers(0, VOCAB, size=n).tolist() for n in PROMPT_LENGTHS]
    manifest = {"torch": torch.__version__, "transformers": transformers.__version__, "seed": SEED,
                "models": {}}

    for i, (name, (cls, cfg)) in enumerate(model_specs().items()):
        torch.manual_seed(SEED + i)
        gen = torch.Generator().manual_seed(SEED + 100 + i)
        cfg._attn_implementation = "eager"
        model = cls(cfg).to(torch.float32).eval()
        randomise_norms_and_biases(model, gen)
        dir_ = os.path.join(out_dir, name)
        model.save_pretrained(dir_, safe_serialization=True)
        model_f64 = model.to(torch.float64)
        ref = reference(model_f64, prompts)
        write_reference(dir_, prompts, ref)
        for dtype in ("bf16", "q8_0", "q4_0"):
            np.save(os.path.join(dir_, "reference", f"logits_{len(prompts[1])}.{dtype}.npy"),
                    rounded_reference(model_f64, dtype, prompts[1]))
        manifest["models"][name] = {"class": cls.__name__,
                                    "params": sum(p.numel() for p in model.parameters())}
        print(name, manifest["models"][name], flush=True)

        if name == "qwen2-bias":
            # Same model in bfloat16, sharded: exercises the index file and the bf16 reader.
            # Its reference rounds the parameters only: casting the whole module would also round
            # the rotary inv_freq buffer, which no checkpoint stores.
            import copy
            bdir = os.path.join(out_dir, name + "-bf16")
            mb = copy.deepcopy(model_f64).to(torch.bfloat16)
            mb.save_pretrained(bdir, safe_serialization=True, max_shard_size="200KB")
            ref_model = copy.deepcopy(model_f64)
            with torch.no_grad():
                for p in ref_model.parameters():
                    p.copy_(p.to(torch.bfloat16).to(torch.float64))
            ref_b = reference(ref_model, prompts)
            write_reference(bdir, prompts, ref_b)
            manifest["models"][name + "-bf16"] = {"class": cls.__name__, "dtype": "bfloat16"}

    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
