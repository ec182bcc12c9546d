#!/usr/bin/env bash
# GPU benchmark: ours (`edgeprompt bench --device cuda`) and the PyTorch + transformers reference,
# same shapes, same GPU, one run. Writes bench/results/gpu-<date>.json (or the path given).
#   bench/gpu_bench.sh [BUILD_DIR] [OUT_JSON]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
out=${2:-bench/results/gpu-$(date -u +%F).json}
mkdir -p "$(dirname "$out")"
ours=$(mktemp)
ref=$(mktemp)
trap 'rm -f "$ours" "$ref"' EXIT

nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader || true
cmd_ours=("$build/edgeprompt" bench --device cuda --shape llama2-7b -p 1024 -n 64 --batch 1 64
          --decode-prompt 512 --reps 11 --profile --json)
echo "==> ours: ${cmd_ours[*]}"
"${cmd_ours[@]}" | tee /dev/stderr | tail -n 1 >"$ours"
cmd_ref=(python3 bench/torch_reference.py --prefill 1024 --decode-prompt 512 --gen 64 --batch 1 64 --reps 3)
echo "==> reference: ${cmd_ref[*]}"
"${cmd_ref[@]}" | tail -n 1 >"$ref"
cat "$ref"

python3 - "$ours" "$ref" "$out" "${cmd_ours[*]}" "${cmd_ref[*]}" <<'PY'
import json, sys
ours, ref = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
# Llama-2-7B, bf16: matrices 13.5 GB; KV 512 KiB per token. Ceilings measured on the same GPU
# class: 774 TFLOP/s bf16 GEMM, 2.9 TB/s copy.
weights, kv_tok, bw = ours["weight_bytes"], 32 * 2 * 4096 * 2, 2.9e12
floor_b1_ms = (weights + 1 * (512 + 32) * kv_tok) / bw * 1e3
floor_b64_tok_s = 64 / ((weights + 64 * (512 + 32) * kv_tok) / bw)
result = {
    "date": __import__("datetime").date.today().isoformat(),
    "device": ours["device"],
    "commands": {"ours": sys.argv[4], "reference": sys.argv[5]},
    "prefill_tok_s": ours["prefill_tok_s"],
    "decode_b1_ms": ours["decode_b1_ms"],
    "decode_b64_tok_s": ours["decode_b64_tok_s"],
    "reference": {k: ref[k] for k in ("prefill_tok_s", "decode_b1_ms", "decode_b64_tok_s")},
    "reference_versions": {k: ref[k] for k in ("torch", "transformers", "attention")},
    "limits": {"decode_b1_ms_floor": floor_b1_ms, "decode_b64_tok_s_bound": floor_b64_tok_s,
               "gemm_TFLOPs": 774, "copy_TBps": 2.9},
    "ours_detail": ours,
    "reference_detail": ref,
}
json.dump(result, open(sys.argv[3], "w"), indent=2)
print(f"{'':24}{'ours':>12}{'PyTorch':>12}")
print(f"{'prefill tok/s (1024)':24}{ours['prefill_tok_s']:>12.0f}{ref['prefill_tok_s']:>12.0f}")
print(f"{'decode b1 ms/step':24}{ours['decode_b1_ms']:>12.2f}{ref['decode_b1_ms']:>12.2f}  floor {floor_b1_ms:.2f}")
print(f"{'decode b64 tok/s':24}{ours['decode_b64_tok_s']:>12.0f}{ref['decode_b64_tok_s']:>12.0f}  bound {floor_b64_tok_s:.0f}")
PY
