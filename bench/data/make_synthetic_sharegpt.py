#!/usr/bin/env python3
"""Writes synthetic_sharegpt.json: 200 SYNTHETIC conversations in the ShareGPT V3 layout.

No conversation here was written by a person or a model: the texts are random English words.
Only the lengths carry information. They are drawn from log-normal distributions whose means
are the ShareGPT means that the vLLM paper reports (Kwon et al., "Efficient Memory Management
for Large Language Model Serving with PagedAttention", SOSP 2023, section 6.1 and Fig. 11a:
about 161 input and 338 output tokens per request); the spreads are our choice, to give those
histograms' long right tails (many short prompts, a few near the 1024-token filter limit).
Lengths are in tokens at 4 bytes per token, the approximation bench-serve uses without
--tokenizer.

Deterministic: the same file on every run (Python's random with a fixed seed).
    python3 bench/data/make_synthetic_sharegpt.py [--out bench/data/synthetic_sharegpt.json]
"""
import argparse
import json
import math
import pathlib
import random

N_CONVERSATIONS = 200
SEED = 20231023
INPUT_MEAN, INPUT_SIGMA = 161.0, 1.2
OUTPUT_MEAN, OUTPUT_SIGMA = 338.0, 0.9
BYTES_PER_TOKEN = 4

WORDS = """the of and to in is that for it as with was on be by this are from or at an which
have not but they their one all we can has more will when there been would if so what about
other into some them these than its time only may also new any could use two first way like
then our how over such people after most make made where well through back much even good
because work each those same between long many great both just own while day under last
system model answer question reason example result number point group problem service level
order report market family city world house water light music story river mountain garden
window letter picture voice heart moment change interest study field program network device
engine signal memory table chart value matrix vector layer token prompt request response
simple quiet bright careful gentle sudden honest clever narrow wide deep warm cold green blue
explain describe compare improve prepare consider discover measure gather follow choose learn
""".split()


def lognormal_with_mean(rng, mean, sigma):
    mu = math.log(mean) - sigma * sigma / 2  # E[exp(N(mu, s^2))] = exp(mu + s^2 / 2)
    return rng.lognormvariate(mu, sigma)


def text_of(rng, n_tokens):
    words, size = [], 0
    while size < n_tokens * BYTES_PER_TOKEN:
        w = rng.choice(WORDS)
        words.append(w)
        size += len(w) + 1
    sentence, out = [], []
    for i, w in enumerate(words):  # sentences of 8 to 20 words, so that it reads as text
        sentence.append(w)
        if len(sentence) >= rng.randint(8, 20) or i == len(words) - 1:
            s = " ".join(sentence)
            out.append(s[0].upper() + s[1:] + ".")
            sentence = []
    return " ".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(pathlib.Path(__file__).with_name("synthetic_sharegpt.json")))
    args = ap.parse_args()
    rng = random.Random(SEED)
    conversations = []
    for i in range(N_CONVERSATIONS):
        n_in = max(1, min(1500, round(lognormal_with_mean(rng, INPUT_MEAN, INPUT_SIGMA))))
        n_out = max(1, min(2000, round(lognormal_with_mean(rng, OUTPUT_MEAN, OUTPUT_SIGMA))))
        turns = [{"from": "human", "value": "Synthetic prompt. " + text_of(rng, n_in)},
                 {"from": "gpt", "value": "Synthetic answer. " + text_of(rng, n_out)}]
        # Like ShareGPT, some conversations go on (the benchmark uses only the first exchange),
        # and a few are a lone prompt (which the benchmark skips).
        r = rng.random()
        if r < 0.03:
            turns = turns[:1]
        elif r < 0.25:
            turns.append({"from": "human", "value": "Synthetic follow-up. " + text_of(rng, 12)})
            turns.append({"from": "gpt", "value": "Synthetic answer. " + text_of(rng, 40)})
        conversations.append({"id": f"synthetic-{i:04d}", "conversations": turns})
    pathlib.Path(args.out).write_text(json.dumps(conversations, indent=0) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
