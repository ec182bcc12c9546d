#!/usr/bin/python3
"""Prints the fidelity table of docs/fidelity.md: relative L2 error and top-1 agreement of
`edgeprompt logits` against the float64 transformers references in tests/fixtures/models.

Usage: tools/fidelity_report.py [path/to/edgeprompt]   (needs numpy: Debian's python3-numpy)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "edgeprompt")
ARCHS = ["llama-gqa", "llama3-rope", "qwen2-bias", "mistral-mha"]
LENGTHS = [8, 40, 150]


def logits(model, prompt_file, out):
    ids = open(prompt_file).read().strip()
    subprocess.run([BIN, "logits", "--model", model, "--tokens", ids, "--out", out], check=True)
    return np.load(out).astype(np.float64)


def metrics(ours, ref):
    return np.linalg.norm(ours - ref) / np.linalg.norm(ref), (ours.argmax(1) == ref.argmax(1)).mean()


def main():
    tmp = tempfile.mkdtemp()
    print("| model | weights | vs f32 reference: rel. L2 (prompts 8 / 40 / 150) | top-1 | "
          "vs stored-weights reference (40) |")
    print("|---|---|---|---|---|")
    for m in ARCHS:
        ref_dir = os.path.join(MODELS, m, "reference")
        for dtype in ["hf", "f32", "f16", "bf16", "q8_0", "q4_0"]:
            model = os.path.join(MODELS, m)
            if dtype != "hf":
                model = os.path.join(tmp, f"{m}-{dtype}.gguf")
                subprocess.run([BIN, "convert", os.path.join(MODELS, m), "--dtype", dtype,
                                "--out", model], check=True, stderr=subprocess.DEVNULL)
            errs, top1 = [], []
            for n in LENGTHS:
                out = logits(model, os.path.join(ref_dir, f"prompt_{n}.txt"), os.path.join(tmp, "l.npy"))
                e, t = metrics(out, np.load(os.path.join(ref_dir, f"logits_{n}.npy")))
                errs.append(e)
                top1.append(t)
            stored = "—"
            if dtype in ("bf16", "q8_0", "q4_0"):
                out = logits(model, os.path.join(ref_dir, "prompt_40.txt"), os.path.join(tmp, "l.npy"))
                e, t = metrics(out, np.load(os.path.join(ref_dir, f"logits_40.{dtype}.npy")).astype(np.float64))
                stored = f"{e:.1e} (top-1 {t:.3f})"
            label = "HF safetensors f32" if dtype == "hf" else f"GGUF {dtype}"
            print(f"| {m} | {label} | {' / '.join(f'{e:.1e}' for e in errs)} | "
                  f"{min(top1):.3f} | {stored} |")


if __name__ == "__main__":
    main()
