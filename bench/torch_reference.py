#!/usr/bin/env python3
"""The PyTorch + transformers reference for the GPU benchmark: LlamaForCausalLM built from a
Llama-2-7B-shaped config with random bf16 weights on the GPU, SDPA attention, the same tests as
`edgeprompt bench --device cuda` (prefill of a 1024-token prompt; greedy decode of 64 tokens
after 512-token prompts at batch 1 and 64). Prints one JSON object."""
import argparse
import json
import statistics

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM


def timed(fn, reps):
    """Median seconds of `reps` runs after one warm-up, timed with device events."""
    fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefill", type=int, default=1024)
    ap.add_argument("--decode-prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    config = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                         num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                         max_position_embeddings=4096)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    model.eval()
    gen = torch.Generator(device="cuda").manual_seed(1)

    out = {"torch": torch.__version__, "transformers": transformers.__version__,
           "device": torch.cuda.get_device_name(), "attention": "sdpa"}
    with torch.inference_mode():
        ids = torch.randint(0, 32000, (1, args.prefill), device="cuda", generator=gen)
        s = timed(lambda: model(ids, use_cache=False, logits_to_keep=1), args.reps)
        out["prefill_tok_s"] = args.prefill / s

        for b in args.batch:
            prompt = torch.randint(0, 32000, (b, args.decode_prompt), device="cuda", generator=gen)

            def decode():
                o = model(prompt, use_cache=True, logits_to_keep=1)
                cache, nxt = o.past_key_values, o.logits[:, -1].argmax(-1, keepdim=True)
                torch.cuda.synchronize()
                t0 = torch.cuda.Event(enable_timing=True)
                t1 = torch.cuda.Event(enable_timing=True)
                t0.record()
                for _ in range(args.gen):
                    o = model(nxt, past_key_values=cache, use_cache=True)
                    cache, nxt = o.past_key_values, o.logits[:, -1].argmax(-1, keepdim=True)
                t1.record()
                torch.cuda.synchronize()
                return t0.elapsed_time(t1) / args.gen

            decode()  # warm-up
            ms = statistics.median(decode() for _ in range(args.reps))
            out[f"decode_b{b}_ms"] = ms
            out[f"decode_b{b}_tok_s"] = b * 1e3 / ms
            torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
