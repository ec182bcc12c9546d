#!/usr/bin/env python3
"""Logits of an exported model, as transformers computes them (float32, eval mode), for the
test that compares our engine with it: reference_logits.py HF_DIR PROMPT_IDS_TXT OUT.npy"""
import sys

import numpy as np
import torch
from transformers import LlamaForCausalLM


def main():
    hf_dir, prompt_path, out = sys.argv[1:4]
    ids = [int(x) for x in open(prompt_path).read().strip().split(",")]
    model = LlamaForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    np.save(out, logits)
    print(f"{out}: {logits.shape}")


if __name__ == "__main__":
    main()
