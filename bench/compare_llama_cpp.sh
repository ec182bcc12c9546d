#!/bin/bash
# Alternating comparison of `edgeprompt bench` and a user-supplied llama.cpp `llama-bench` on the
# same GGUF files (this script only runs the two programs; it does not build llama.cpp).
#
#   bench/compare_llama_cpp.sh LLAMA_BENCH MODEL_DIR [ROUNDS] [TYPES] > results.jsonl
#
#   LLAMA_BENCH  path of llama-bench
#   MODEL_DIR    directory with tinyllama-<type>.gguf written by
#                `edgeprompt synth --shape tinyllama-1.1b --dtype <type> --out ...`
#   ROUNDS       rounds (default 3); each round runs every type, ours and llama.cpp back to back,
#                with the order swapped every other round (AB, BA, ...)
#   TYPES        default "q4_0 q8_0 f16"
#
# Environment: EP (default build/edgeprompt), THREADS (2), P (512), N (128), REPS (3),
# WAIT_LOAD (e.g. 1.0: before each run wait, up to WAIT_MAX seconds (default 600), until the
# 1-minute load average is below it; for a machine shared with other work).
# Prints one JSON object per run (round, type, program, UTC start, 1-minute load average before
# the run, and that program's own JSON output), then a summary line per round and type with the
# ratios; progress goes to stderr. READ_BW (optional): path of the built bench/read_bandwidth.cpp
# (configured with -DEP_BENCH=ON: build/bench/read_bandwidth), run at the start of every round and
# recorded as program "read_bandwidth" (the machine's plain read bandwidth in those minutes,
# against which decode GB/s is read). FRESH_CACHE=1: before every
# run, drop the model file from the page cache and read it back through an edgeprompt mapping
# (2 MiB folios), so that both programs start from the same page-cache state; see
# docs/performance.md ("Page cache") for why this matters on a machine that pages out idle memory. Both programs run with mmap'd weights and THREADS threads.
set -euo pipefail

LLAMA_BENCH=${1:?usage: compare_llama_cpp.sh LLAMA_BENCH MODEL_DIR [ROUNDS] [TYPES]}
MODEL_DIR=${2:?usage: compare_llama_cpp.sh LLAMA_BENCH MODEL_DIR [ROUNDS] [TYPES]}
ROUNDS=${3:-3}
TYPES=${4:-q4_0 q8_0 f16}
EP=${EP:-build/edgeprompt}
THREADS=${THREADS:-2}
P=${P:-512}
N=${N:-128}
REPS=${REPS:-3}
WAIT_LOAD=${WAIT_LOAD:-}
WAIT_MAX=${WAIT_MAX:-600}

load() { cut -d' ' -f1 /proc/loadavg; }

wait_quiet() {
  [ -n "$WAIT_LOAD" ] || return 0
  local waited=0
  while awk -v l="$(load)" -v m="$WAIT_LOAD" 'BEGIN { exit !(l >= m) }' && [ "$waited" -lt "$WAIT_MAX" ]; do
    sleep 5
    waited=$((waited + 5))
  done
}

run_ours() {
  "$EP" bench -m "$1" -t "$THREADS" -p "$P" -n "$N" -r "$REPS" --json 2>/dev/null | tail -n 1
}

# llama-bench prints one JSON object per test (pp, tg) with -o jsonl; merge them into one.
run_llama() {
  "$LLAMA_BENCH" -m "$1" -t "$THREADS" -p "$P" -n "$N" -r "$REPS" -o jsonl 2>/dev/null |
    python3 -c '
import json, sys
out = {}
for line in sys.stdin:
    d = json.loads(line)
    key = "prefill" if d["n_prompt"] > 0 else "decode"
    out[key + "_tok_s"] = d["avg_ts"]
    out[key + "_tok_s_sd"] = d["stddev_ts"]
    out[key + "_tok_s_reps"] = d["samples_ts"]
    out["build_commit"] = d.get("build_commit")
    out["cpu_info"] = d.get("cpu_info")
print(json.dumps(out))'
}

fresh_cache() {  # model
  [ "${FRESH_CACHE:-0}" = 1 ] || return 0
  python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
  "$EP" bench -m "$1" -t "$THREADS" -p 1 -n 1 -r 1 >/dev/null 2>&1
}

record() {  # round type program model
  local l t out
  wait_quiet
  fresh_cache "$4"  # right before the run: idle pages are paged out after about a minute
  l=$(load)
  t=$(date -u +%H:%M:%S)
  echo "round $1 $2 $3 (load $l, $t UTC)" >&2
  if [ "$3" = edgeprompt ]; then out=$(run_ours "$4"); else out=$(run_llama "$4"); fi
  echo "{\"round\": $1, \"type\": \"$2\", \"program\": \"$3\", \"started_utc\": \"$t\", \"load_before\": $l, \"result\": $out}"
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  if [ -n "${READ_BW:-}" ]; then
    wait_quiet
    echo "{\"round\": $round, \"type\": \"-\", \"program\": \"read_bandwidth\", \"started_utc\": \"$(date -u +%H:%M:%S)\", \"load_before\": $(load), \"result\": $("$READ_BW" "$THREADS" 7)}" | tee -a "$tmp"
  fi
  for type in $TYPES; do
    model="$MODEL_DIR/tinyllama-$type.gguf"
    if [ $((round % 2)) -eq 1 ]; then order="edgeprompt llama.cpp"; else order="llama.cpp edgeprompt"; fi
    for prog in $order; do record "$round" "$type" "$prog" "$model" | tee -a "$tmp"; done
  done
done

python3 - "$tmp" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in runs:
    by.setdefault((r["round"], r["type"]), {})[r["program"]] = r["result"]
ratios = {}
for (rnd, typ), v in sorted(by.items()):
    e, l = v.get("edgeprompt"), v.get("llama.cpp")
    if not e or not l:
        continue
    pp = e["prefill_tok_s"] / l["prefill_tok_s"]
    tg = e["decode_tok_s"] / l["decode_tok_s"]
    ratios.setdefault(typ, []).append((pp, tg))
    print(json.dumps({"summary": "round", "round": rnd, "type": typ,
                      "prefill_ratio": round(pp, 3), "decode_ratio": round(tg, 3)}))
for typ, rs in ratios.items():
    print(json.dumps({"summary": "median", "type": typ,
                      "prefill_ratio": round(statistics.median(r[0] for r in rs), 3),
                      "decode_ratio": round(statistics.median(r[1] for r in rs), 3)}))
EOF
