#!/usr/bin/env python3
"""Build tiny random-weight Qwen3, Phi-3 and Gemma 3 models and record float64 reference logits.

Runs where torch and transformers are installed (the GPU machine); needs no network. Like
tools/make_reference.py, for the architectures whose layers differ from Llama's:

  qwen3-qk-norm   RMS norm of each query and key head (q_norm, k_norm) before RoPE
  phi3-fused      fused q/k/v projection (qkv_proj) and fused gate/up projection (gate_up_proj)
  gemma3-swa      sliding-window and global layers with their own RoPE bases, embeddings scaled
                  by sqrt(hidden), (1 + w) RMS norms, norms after attention and feed-forward,
                  query_pre_attn_scalar, GELU (tanh), q/k norms, final logit soft-capping

Each model is written as OUT_DIR/<model>.tar.gz holding <model>/config.json,
model.safetensors (float32) and reference/prompt_<n>.txt, reference/logits_<n>.npy (float64
logits [n, vocab], computed in float64 with eager attention); OUT_DIR/manifest.json records the
versions, seeds and the largest |float32 - float64| logit difference transformers itself shows.

Usage: python3 tools/make_arch_reference.py OUT_DIR
"""
import json
import os
import sys
import tarfile
import tempfile
import traceback

import numpy as np
import torch
import transformers

VOCAB = 1000
PROMPT_LENGTHS = (8, 40)
SEED = 20261203


def common(**kw):
    base = dict(vocab_size=VOCAB, initializer_range=0.08, max_position_embeddings=512,
                bos_token_id=1, eos_token_id=2, pad_token_id=0)
    base.update(kw)
    return base


def qwen3_variants():
    shape = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=24, rms_norm_eps=1e-6, tie_word_embeddings=False,
                 attention_bias=False, use_sliding_window=False)
    yield common(**shape, rope_theta=1000000.0)
    yield common(**shape, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})


def phi3_variants():
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, rms_norm_eps=1e-5, tie_word_embeddings=False,
                 sliding_window=None, original_max_position_embeddings=512, hidden_act="silu")
    yield common(**shape, rope_theta=10000.0)
    yield common(**shape, rope_parameters={"rope_type": "default", "rope_theta": 10000.0})


def gemma3_variants():
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6, tie_word_embeddings=True,
                 hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24,
                 sliding_window=16, final_logit_softcapping=1.0, attn_logit_softcapping=None,
                 layer_types=["sliding_attention", "full_attention"], sliding_window_pattern=2)
    yield common(**shape, rope_parameters={
        "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
    yield common(**shape, rope_theta=1000000.0, rope_local_base_freq=10000.0)
    del shape["sliding_window_pattern"]
    yield common(**shape, rope_theta=1000000.0, rope_local_base_freq=10000.0)


def specs():
    return [
        ("qwen3-qk-norm", "Qwen3Config", "Qwen3ForCausalLM", qwen3_variants),
        ("phi3-fused", "Phi3Config", "Phi3ForCausalLM", phi3_variants),
        ("gemma3-swa", "Gemma3TextConfig", "Gemma3ForCausalLM", gemma3_variants),
    ]


def randomise_norms(model, gemma, gen):
    """transformers sets norm weights to 1 (Gemma: 0, used as 1 + w); make them informative."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                noise = 0.2 * torch.randn(p.shape, generator=gen)
                p.copy_(noise if gemma else 1.0 + noise)
            elif name.endswith(".bias"):
                p.copy_(0.08 * torch.randn(p.shape, generator=gen))


def logits_of(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids], dtype=torch.long)).logits[0]


def build(name, cfg_cls, model_cls, variants, prompts, out_dir, index):
    errors = []
    for kw in variants():
        try:
            torch.manual_seed(SEED + index)
            cfg = cfg_cls(**kw)
            cfg._attn_implementation = "eager"
            model = model_cls(cfg).to(torch.float32).eval()
            randomise_norms(model, name.startswith("gemma"),
                            torch.Generator().manual_seed(SEED + 100 + index))
            f32 = [logits_of(model, ids).double().numpy() for ids in prompts]
            break
        except Exception:  # a config this transformers does not take: try the next spelling
            errors.append(traceback.format_exc())
            model = None
    if model is None:
        raise RuntimeError("\n".join(errors))
    with tempfile.TemporaryDirectory() as tmp:
        mdir = os.path.join(tmp, name)
        model.save_pretrained(mdir, safe_serialization=True)
        model64 = model.to(torch.float64)
        rdir = os.path.join(mdir, "reference")
        os.makedirs(rdir)
        worst = 0.0
        for ids, l32 in zip(prompts, f32):
            l64 = logits_of(model64, ids).numpy().astype(np.float64)
            worst = max(worst, float(np.abs(l64 - l32).max()))
            with open(os.path.join(rdir, f"prompt_{len(ids)}.txt"), "w") as f:
                f.write(",".join(map(str, ids)) + "\n")
            np.save(os.path.join(rdir, f"logits_{len(ids)}.npy"), l64)
        with open(os.path.join(mdir, "config.json")) as f:
            print(name, "config.json:", f.read(), flush=True)
        from safetensors import safe_open
        with safe_open(os.path.join(mdir, "model.safetensors"), "np") as st:
            print(name, "tensors:", {k: list(st.get_slice(k).get_shape()) for k in st.keys()},
                  flush=True)
        with tarfile.open(os.path.join(out_dir, name + ".tar.gz"), "w:gz") as tar:
            tar.add(mdir, arcname=name)
    return {"class": model_cls.__name__, "params": sum(p.numel() for p in model.parameters()),
            "max_abs_f32_vs_f64_logit": worst, "config_tries": len(errors) + 1}


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(SEED)
    prompts = [rng.integers(3, VOCAB, size=n).tolist() for n in PROMPT_LENGTHS]
    manifest = {"torch": torch.__version__, "transformers": transformers.__version__, "seed": SEED,
                "models": {}}
    failed = 0
    for i, (name, cfg_name, model_name, variants) in enumerate(specs()):
        try:
            info = build(name, getattr(transformers, cfg_name), getattr(transformers, model_name),
                         variants, prompts, out_dir, i)
        except Exception:
            failed += 1
            info = {"error": traceback.format_exc()}
        manifest["models"][name] = info
        print(name, json.dumps(info, indent=1), flush=True)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
