#!/usr/bin/env python3
"""Trains the default model: a small Llama (GQA, RoPE, SwiGLU) on the corpus of make_corpus.py.

Input (--data): train_ids.u16 (the training stream, documents as <s>...</s>), heldout_ids.u16
(held-out English text, tokenized with BOS the way `edgeprompt perplexity` does) and
heldout_chat_ids.u16, all written by tools/train/prepare.sh with our own tokenizer, so training
sees exactly the ids the engine produces at inference.

Output (--out): hf/ (config.json + f32 safetensors, loadable by transformers and by `edgeprompt
convert`), history.json (losses), eval.json (held-out perplexity with the sliding window of
`edgeprompt perplexity`), reference_prompt.txt + reference_logits.npy (tools/train/
reference_logits.py on the exported files), loss.png, checkpoint.pt (for --resume).

Seeds are fixed; batches are drawn from a seeded generator, so a rerun visits the same data
(GPU reductions may still differ in the last bits).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM


def model_config(args):
    return LlamaConfig(
        vocab_size=4096, hidden_size=384, intermediate_size=1152, num_hidden_layers=6,
        num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=1024,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=1,
        eos_token_id=2, attention_bias=False, mlp_bias=False, hidden_act="silu",
        initializer_range=0.02, attention_dropout=args.attention_dropout)


def load_u16(path):
    return torch.from_numpy(np.fromfile(path, dtype=np.uint16).astype(np.int64))


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def window_loss(model, ids, seq, device, max_windows=64):
    """Mean next-token loss over consecutive non-overlapping windows (a quick held-out check)."""
    model.eval()
    n = min(max_windows, (len(ids) - 1) // seq)
    x = ids[: n * seq + 1]
    inputs = x[:-1].view(n, seq).to(device)
    targets = x[1:].view(n, seq).to(device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(input_ids=inputs).logits
    model.train()
    return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1)).item()


@torch.no_grad()
def sliding_perplexity(model, ids, ctx, stride, device):
    """Perplexity with a sliding window: window i covers [begin, begin+ctx) with begin a multiple
    of `stride`; each token is scored once, by the first window that has it past the previous
    window's end, with as much context as the window gives. Token 0 (BOS) is never scored.
    `edgeprompt perplexity --ctx --stride` computes the same quantity."""
    model.eval()
    nll, count, prev_end = 0.0, 0, 0
    n = len(ids)
    for begin in range(0, n, stride):
        end = min(begin + ctx, n)
        first_scored = max(prev_end, begin + 1)  # position of the first target scored
        window = ids[begin:end].to(device)[None]
        logits = model(input_ids=window).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        targets = window[0, first_scored - begin:]
        picked = logp[first_scored - begin - 1:end - begin - 1].gather(1, targets[:, None])
        nll -= picked.sum().item()
        count += end - first_scored
        prev_end = end
        if end == n:
            break
    model.train()
    return math.exp(nll / count), count


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--attention-dropout", type=float, default=0.1)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--time-limit-min", type=float, default=9.0,
                    help="stop early (and say so) if training would run past this")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--ppl-ctx", type=int, default=512)
    ap.add_argument("--ppl-stride", type=int, default=256)
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    device = "cuda"
    train_ids = load_u16(os.path.join(args.data, "train_ids.u16"))
    heldout_ids = load_u16(os.path.join(args.data, "heldout_ids.u16"))
    heldout_chat_ids = load_u16(os.path.join(args.data, "heldout_chat_ids.u16"))
    print(f"train tokens {len(train_ids)}, held-out text {len(heldout_ids)}, "
          f"held-out chat {len(heldout_chat_ids)}", flush=True)

    config = model_config(args)
    model = LlamaForCausalLM(config).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters {n_params}", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    gen = torch.Generator().manual_seed(args.seed)
    history = {"step": [], "train_loss": [], "eval_step": [], "heldout_text_loss": [],
               "heldout_chat_loss": []}
    start_step = 0
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    if args.resume and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        history, start_step = ckpt["history"], ckpt["step"]
        print(f"resumed at step {start_step}", flush=True)

    step_fn = model if args.no_compile else torch.compile(model)
    best = (float("inf"), None, -1)
    t0 = time.time()
    stopped_early = False
    running = None
    for step in range(start_step, args.steps):
        starts = torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=gen)
        batch = torch.stack([train_ids[s:s + args.seq + 1] for s in starts.tolist()]).to(
            device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = step_fn(input_ids=batch[:, :-1]).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0:
            value = loss.item()
            running = value if running is None else 0.9 * running + 0.1 * value
            history["step"].append(step)
            history["train_loss"].append(value)
        last = step == args.steps - 1
        over_time = (time.time() - t0) / 60 > args.time_limit_min
        if step % args.eval_every == 0 or last or over_time:
            text = window_loss(model, heldout_ids, args.seq, device)
            chat = window_loss(model, heldout_chat_ids, args.seq, device)
            history["eval_step"].append(step)
            history["heldout_text_loss"].append(text)
            history["heldout_chat_loss"].append(chat)
            print(f"step {step} lr {lr_at(step, args):.2e} train {running:.3f} held-out text "
                  f"{text:.3f} chat {chat:.3f} ({time.time() - t0:.0f} s)", flush=True)
            if text < best[0]:
                best = (text, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
        if over_time and not last:
            stopped_early = True
            print(f"time limit reached at step {step}; rerun with --resume to continue",
                  flush=True)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "generator": gen.get_state(), "history": history, "step": step + 1},
                       ckpt_path)
            break
    train_s = time.time() - t0

    model.load_state_dict(best[1])
    model.float().eval()
    ppl, scored = sliding_perplexity(model, heldout_ids, args.ppl_ctx, args.ppl_stride, device)
    with open(os.path.join(args.out, "reference_prompt.txt"), "w") as f:
        f.write(",".join(str(int(x)) for x in heldout_ids[:48]) + "\n")
    result = {
        "parameters": n_params, "steps_run": step + 1, "steps_planned": args.steps,
        "stopped_early": stopped_early, "best_step": best[2], "train_seconds": round(train_s, 1),
        "tokens_seen": (step + 1) * args.batch * args.seq, "train_tokens": len(train_ids),
        "heldout_text_loss_best": best[0], "heldout_ppl": ppl, "heldout_ppl_tokens": scored,
        "ppl_ctx": args.ppl_ctx, "args": vars(args), "ppl_stride": args.ppl_stride, "seed": args.seed,
        "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
    }
    print(json.dumps(result), flush=True)
    with open(os.path.join(args.out, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(history, f)
    model.save_pretrained(os.path.join(args.out, "hf"), safe_serialization=True,
                          max_shard_size="15MB")
    plot(history, best[2], os.path.join(args.out, "loss.png"))
    # The test's reference, from the exported files as any transformers user would load them.
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "reference_logits.py"),
                    os.path.join(args.out, "hf"), os.path.join(args.out, "reference_prompt.txt"),
                    os.path.join(args.out, "reference_logits.npy")], check=True)


def plot(history, best_step, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(history["step"], history["train_loss"], lw=0.8, alpha=0.7, label="training batch")
    ax.plot(history["eval_step"], history["heldout_text_loss"], "o-", ms=3,
            label="held-out text (Bible, fortunes)")
    ax.plot(history["eval_step"], history["heldout_chat_loss"], "s-", ms=3,
            label="held-out chat (dictionary, verses, fortunes)")
    ax.axvline(best_step, color="grey", ls=":", lw=1, label=f"exported (step {best_step})")
    ax.set_xlabel("step (64 x 512 tokens)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("EdgePrompt default model: training and held-out loss")
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
